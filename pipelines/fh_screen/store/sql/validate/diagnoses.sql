-- Row checks for stg_diagnoses: patient known, diagnosed_on not in the future, not before birth,
-- not after death. A check is NULL when it does not apply (GX in-set skips NULLs).
CREATE OR REPLACE VIEW gx_diagnoses AS
SELECT s.*,
       regexp_full_match(s.icd10_code, '[A-Z][0-9]{2}[0-9A-Z]{0,4}') AS icd10_code_wellformed,
       k.patient_id IS NOT NULL AS patient_known,
       s.diagnosed_on <= g.latest_date AS diagnosed_on_not_future,
       CASE WHEN k.birth_date IS NULL THEN NULL ELSE s.diagnosed_on >= k.birth_date END AS diagnosed_on_after_birth,
       CASE WHEN k.deceased_date IS NULL THEN NULL ELSE s.diagnosed_on <= k.deceased_date END AS diagnosed_on_before_death
FROM stg_diagnoses s
CROSS JOIN gx_run g
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
