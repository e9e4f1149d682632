-- Everyone a row of this delivery may refer to: staged patients that passed validation
-- (the staged row wins: it is the newer delivery) plus patients already curated.
CREATE OR REPLACE TABLE gx_known_patients AS
SELECT patient_id, birth_date, deceased_date FROM stg_patients
UNION ALL
SELECT p.patient_id, p.birth_date, p.deceased_date
FROM patients p
WHERE NOT EXISTS (SELECT 1 FROM stg_patients s WHERE s.patient_id = p.patient_id);
