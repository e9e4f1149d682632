-- Latest lipid-clinic outcome per patient on or before the run date ($1). On one date a
-- confirmed outcome outranks a negative one, which outranks non-attendance (fixed order, so
-- reruns agree).
SELECT patient_id, outcome, outcome_date
FROM clinic_outcomes
WHERE outcome_date <= $1
QUALIFY row_number() OVER (
  PARTITION BY patient_id
  ORDER BY outcome_date DESC,
           CASE outcome WHEN 'fh_genetic' THEN 1 WHEN 'fh_clinical' THEN 2 WHEN 'not_fh' THEN 3
                        WHEN 'pending' THEN 4 WHEN 'declined' THEN 5 WHEN 'did_not_attend' THEN 6 ELSE 7 END,
           outcome
) = 1
