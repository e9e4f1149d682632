-- Pilot metrics: one row per relative in the cascade ledger, with the relative's own latest
-- clinic outcome where the relative is known to the region. Bound: $as_of.
WITH latest_outcome AS (
  SELECT patient_id, outcome
  FROM clinic_outcomes
  WHERE outcome_date <= $as_of::DATE
  QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY outcome_date DESC, outcome) = 1
)
SELECT
  c.index_patient_id,
  c.letter_sent_on IS NOT NULL AND c.letter_sent_on <= $as_of::DATE AS contacted,
  lower(c.result) AS result,
  o.outcome AS relative_outcome
FROM cascade_ledger c
LEFT JOIN latest_outcome o ON o.patient_id = c.relative_id
