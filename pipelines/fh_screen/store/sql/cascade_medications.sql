-- Dispensings of the people registered as _cascade_people up to the run date ($1): the
-- treatment at each relative's LDL-C sample (see cascade_ldl.sql).
SELECT patient_id, atc_code, dispensed_on, strength_mg
FROM medications
WHERE dispensed_on <= $1
  AND patient_id IN (SELECT patient_id FROM _cascade_people)
