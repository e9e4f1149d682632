SELECT patient_id, item, recorded_on
FROM family_history
WHERE recorded_on <= $as_of
