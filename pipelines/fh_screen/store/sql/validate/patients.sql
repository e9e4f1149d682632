-- Row checks for stg_patients that GX cannot express on DuckDB (cross-column dates).
CREATE OR REPLACE VIEW gx_patients AS
SELECT s.*,
       s.birth_date <= g.latest_date AS birth_not_future,
       s.birth_date >= g.earliest_birth AS birth_plausible,
       CASE WHEN s.deceased_date IS NULL OR s.birth_date IS NULL THEN NULL
            ELSE s.deceased_date >= s.birth_date AND s.deceased_date <= g.latest_date END AS deceased_date_sane,
       CASE WHEN s.moved_out_date IS NULL OR s.birth_date IS NULL THEN NULL
            ELSE s.moved_out_date >= s.birth_date AND s.moved_out_date <= g.latest_date END AS moved_out_date_sane
FROM stg_patients s CROSS JOIN gx_run g;
