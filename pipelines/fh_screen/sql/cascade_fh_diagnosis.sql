-- First recorded FH diagnosis per patient on or before the run date ($1).
-- Codes (normalised, see schema.sql): anything starting E780 - WHO ICD-10 E78.0, Danish SKS
-- DE780B (the code the Danish FH database uses), ICD-10-CM E78.01 (shared/clinical §10.3).
SELECT patient_id, min(diagnosed_on) AS fh_diagnosed_on
FROM diagnoses
WHERE icd10_code LIKE 'E780%'
  AND diagnosed_on <= $1
GROUP BY patient_id
