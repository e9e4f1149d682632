-- First recorded FH diagnosis per patient on or before the run date ($1), with the run date
-- of the delivery that brought it (dx_arrived_on, NULL if unknown).
-- FH-specific codes only (normalised, see schema.sql): Danish SKS DE780B (the code the Danish
-- FH database uses) and ICD-10-CM E78.01. Plain WHO E78.0 is pure hypercholesterolaemia, not FH
-- (reference/rules/exclusions_v2.yaml, decision fh_specific_codes).
SELECT x.patient_id, x.diagnosed_on AS fh_diagnosed_on, d.as_of AS dx_arrived_on
FROM diagnoses x
LEFT JOIN deliveries d USING (delivery_id)
WHERE x.icd10_code IN ('E780B', 'E7801')
  AND x.diagnosed_on <= $1
QUALIFY row_number() OVER (PARTITION BY x.patient_id ORDER BY x.diagnosed_on, d.as_of NULLS LAST) = 1
