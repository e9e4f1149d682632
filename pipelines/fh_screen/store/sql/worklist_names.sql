-- Worklist details: the names of the patients registered as _listed (contacts).
SELECT patient_id, full_name FROM contacts WHERE patient_id IN (SELECT patient_id FROM _listed)
