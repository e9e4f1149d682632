-- Patients whose date-dependent results may differ between the night $since and the night
-- $as_of although no row of theirs was loaded since (fh_screen.store.changes):
--   * a record whose date is reached (the features read only records dated on or before the
--     run date: a result sampled, a drug dispensed, a diagnosis, family history item or
--     clinic outcome dated after $since and on or before $as_of),
--   * a birthday (age in completed years, the adult/child line and age bands),
--   * a death or move-out date reached,
--   * a day count from a dispensing reached ($medication_days: treatment coverage ending, the
--     time a drug takes to act - every "*_days" number of the LDL-C estimation rule),
--   * a day count from a clinic outcome reached ($outcome_days: the "recent outcome" window of
--     the exclusions rule).
-- Over-inclusion only costs time; a missing boundary makes a night differ from a full pass,
-- which tests/property/test_incremental_nights.py checks.
SELECT patient_id FROM patients
WHERE (year(CAST($as_of AS DATE)) - year(birth_date)
       - CASE WHEN month(CAST($as_of AS DATE)) * 100 + day(CAST($as_of AS DATE)) < month(birth_date) * 100 + day(birth_date) THEN 1 ELSE 0 END)
   <> (year(CAST($since AS DATE)) - year(birth_date)
       - CASE WHEN month(CAST($since AS DATE)) * 100 + day(CAST($since AS DATE)) < month(birth_date) * 100 + day(birth_date) THEN 1 ELSE 0 END)
   OR (deceased_date > $since AND deceased_date <= $as_of)
   OR (moved_out_date > $since AND moved_out_date <= $as_of)
UNION
SELECT patient_id FROM medications
WHERE EXISTS (SELECT 1 FROM unnest($medication_days) AS u(d)
              WHERE dispensed_on + d > $since AND dispensed_on + d <= $as_of)
UNION
SELECT patient_id FROM clinic_outcomes
WHERE EXISTS (SELECT 1 FROM unnest($outcome_days) AS u(d)
              WHERE outcome_date + d > $since AND outcome_date + d <= $as_of)
UNION
SELECT patient_id FROM usable_lab_results($as_of)
WHERE sampled_at >= CAST($since AS DATE) + 1 AND sampled_at < CAST($as_of AS DATE) + 1
UNION
SELECT patient_id FROM medications WHERE dispensed_on > $since AND dispensed_on <= $as_of
UNION
SELECT patient_id FROM diagnoses WHERE diagnosed_on > $since AND diagnosed_on <= $as_of
UNION
SELECT patient_id FROM family_history WHERE recorded_on > $since AND recorded_on <= $as_of
UNION
SELECT patient_id FROM clinic_outcomes WHERE outcome_date > $since AND outcome_date <= $as_of
