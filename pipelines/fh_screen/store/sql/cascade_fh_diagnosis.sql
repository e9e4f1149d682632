-- First recorded FH diagnosis per patient on or before the run date ($1), with the run date
-- of the delivery that brought it (dx_arrived_on, NULL if unknown).
-- Codes (normalised, see schema.sql): anything starting E780 - WHO ICD-10 E78.0, Danish SKS
-- DE780B (the code the Danish FH database uses), ICD-10-CM E78.01 (docs/clinical-reference.md §10.3).
SELECT x.patient_id, x.diagnosed_on AS fh_diagnosed_on, d.as_of AS dx_arrived_on
FROM diagnoses x
LEFT JOIN deliveries d USING (delivery_id)
WHERE x.icd10_code LIKE 'E780%'
  AND x.diagnosed_on <= $1
QUALIFY row_number() OVER (PARTITION BY x.patient_id ORDER BY x.diagnosed_on, d.as_of NULLS LAST) = 1
