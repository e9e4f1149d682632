SELECT patient_id, atc_code, dispensed_on, strength_mg
FROM medications
WHERE dispensed_on <= $as_of
