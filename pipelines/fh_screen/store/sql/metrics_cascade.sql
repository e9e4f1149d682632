-- Pilot metrics: one row per relative in the cascade ledger (rows for an index case with
-- no relative on record are left out). "tested" = the loop was closed by a result obtained
-- after the letter (cascade step: closed_on). Bound: $as_of.
SELECT
  c.index_patient_id,
  c.letter_sent_on IS NOT NULL AND c.letter_sent_on <= $as_of::DATE AS contacted,
  c.closed_on IS NOT NULL AND c.closed_on <= $as_of::DATE AS closed,
  lower(c.result) AS result
FROM cascade_ledger c
WHERE c.relative_id IS NOT NULL AND c.relative_id <> ''
