-- Row checks for stg_clinic_outcomes: patient known, outcome_date not in the future, not before birth,
-- not after death. A check is NULL when it does not apply (GX in-set skips NULLs).
CREATE OR REPLACE VIEW gx_clinic_outcomes AS
SELECT s.*,
       k.patient_id IS NOT NULL AS patient_known,
       s.outcome_date <= g.latest_date AS outcome_date_not_future,
       CASE WHEN k.birth_date IS NULL THEN NULL ELSE s.outcome_date >= k.birth_date END AS outcome_date_after_birth,
       CASE WHEN k.deceased_date IS NULL THEN NULL ELSE s.outcome_date <= k.deceased_date END AS outcome_date_before_death
FROM stg_clinic_outcomes s
CROSS JOIN gx_run g
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
