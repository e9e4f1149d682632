-- Row checks for stg_family_history: patient known, recorded_on not in the future, not before birth,
-- not after death. A check is NULL when it does not apply (GX in-set skips NULLs).
CREATE OR REPLACE VIEW gx_family_history AS
SELECT s.*,
       k.patient_id IS NOT NULL AS patient_known,
       s.recorded_on <= g.latest_date AS recorded_on_not_future,
       CASE WHEN k.birth_date IS NULL THEN NULL ELSE s.recorded_on >= k.birth_date END AS recorded_on_after_birth,
       CASE WHEN k.deceased_date IS NULL THEN NULL ELSE s.recorded_on <= k.deceased_date END AS recorded_on_before_death
FROM stg_family_history s
CROSS JOIN gx_run g
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
