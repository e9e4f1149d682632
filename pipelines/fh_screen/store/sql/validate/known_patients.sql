-- Everyone a row of this delivery may refer to: staged patients that passed validation
-- (the staged row wins: it is the newer delivery) plus the curated patients that the staged
-- rows name (``gx_referenced``, made by the validate step from this phase's staged tables),
-- so a night's checks join the patients of what arrived, not the whole region.
CREATE OR REPLACE TABLE gx_known_patients AS
SELECT patient_id, birth_date, deceased_date FROM stg_patients
UNION ALL
SELECT p.patient_id, p.birth_date, p.deceased_date
FROM patients p
WHERE p.patient_id IN (SELECT patient_id FROM gx_referenced)
  AND NOT EXISTS (SELECT 1 FROM stg_patients s WHERE s.patient_id = p.patient_id);
