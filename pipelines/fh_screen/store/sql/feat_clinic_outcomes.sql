SELECT patient_id, outcome_date, outcome, gene
FROM clinic_outcomes
WHERE outcome_date <= $as_of
