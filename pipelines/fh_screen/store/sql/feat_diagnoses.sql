SELECT patient_id, icd10_code, diagnosed_on
FROM diagnoses
WHERE diagnosed_on <= $as_of
