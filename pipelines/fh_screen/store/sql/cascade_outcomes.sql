-- Latest lipid-clinic outcome per patient on or before the run date ($1), with the run date
-- of the delivery that brought it (outcome_arrived_on, NULL if unknown). On one date a
-- confirmed outcome outranks a negative one, which outranks non-attendance (fixed order, so
-- reruns agree).
SELECT o.patient_id, o.outcome, o.outcome_date, d.as_of AS outcome_arrived_on
FROM clinic_outcomes o
LEFT JOIN deliveries d USING (delivery_id)
WHERE o.outcome_date <= $1
QUALIFY row_number() OVER (
  PARTITION BY o.patient_id
  ORDER BY o.outcome_date DESC,
           CASE o.outcome WHEN 'fh_genetic' THEN 1 WHEN 'fh_clinical' THEN 2 WHEN 'not_fh' THEN 3
                          WHEN 'pending' THEN 4 WHEN 'declined' THEN 5 WHEN 'did_not_attend' THEN 6 ELSE 7 END,
           o.outcome
) = 1
