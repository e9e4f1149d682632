-- Row checks for stg_lab_results: plausible value per analyte (gx_analyte_ranges), unit
-- that fits the analyte (gx_units, spelled as stage normalises it: gx_unit_keys), patient known, and sample date sanity.
-- A check is NULL when it does not apply (GX in-set expectations skip NULLs).
CREATE OR REPLACE VIEW gx_lab_results AS
SELECT s.*,
       (s.value IS NOT NULL OR s.status = 'cancelled') AS value_present,
       CASE WHEN s.value IS NULL OR r.analyte IS NULL THEN NULL
            ELSE s.value BETWEEN r.low AND r.high END AS value_plausible,
       CASE WHEN s.unit_raw IS NULL OR s.analyte IS NULL THEN NULL
            ELSE u.analyte IS NOT NULL AND s.unit = u.canonical_unit END AS unit_fits_analyte,
       k.patient_id IS NOT NULL AS patient_known,
       CAST(s.sampled_at AS DATE) <= g.latest_date AS sampled_not_future,
       CASE WHEN k.birth_date IS NULL THEN NULL
            ELSE CAST(s.sampled_at AS DATE) >= k.birth_date END AS sampled_after_birth,
       CASE WHEN k.deceased_date IS NULL THEN NULL
            ELSE CAST(s.sampled_at AS DATE) <= k.deceased_date END AS sampled_before_death
FROM stg_lab_results s
CROSS JOIN gx_run g
LEFT JOIN gx_analyte_ranges r ON r.analyte = s.analyte
LEFT JOIN gx_unit_keys uk ON uk.unit_raw = s.unit_raw
LEFT JOIN gx_units u ON u.analyte = s.analyte AND u.unit_key = uk.unit_key
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
