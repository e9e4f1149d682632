-- Row checks for stg_medications: patient known, dispensed_on not in the future, not before birth,
-- not after death. A check is NULL when it does not apply (GX in-set skips NULLs).
CREATE OR REPLACE VIEW gx_medications AS
SELECT s.*,
       regexp_full_match(s.atc_code, '[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?') AS atc_code_wellformed,
       k.patient_id IS NOT NULL AS patient_known,
       s.dispensed_on <= g.latest_date AS dispensed_on_not_future,
       CASE WHEN k.birth_date IS NULL THEN NULL ELSE s.dispensed_on >= k.birth_date END AS dispensed_on_after_birth,
       CASE WHEN k.deceased_date IS NULL THEN NULL ELSE s.dispensed_on <= k.deceased_date END AS dispensed_on_before_death
FROM stg_medications s
CROSS JOIN gx_run g
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
