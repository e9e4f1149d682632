-- Patients as delivered (features step). Dates after the run date are handled in Python.
SELECT patient_id, birth_date, sex, practice_id, postcode, deceased_date, moved_out_date
FROM patients
