-- Pilot metrics: one row per person ever listed on a GP worklist, with what followed.
-- Bound: $as_of. Needs referral_events (referrals step) and the contract tables.
WITH ev AS (
  SELECT * FROM referral_events WHERE as_of <= $as_of::DATE
),
first_seen AS (          -- first night the person appeared in any referral event (flag date)
  SELECT patient_id, min(as_of) AS flagged_on FROM ev GROUP BY patient_id
),
first_listed AS (
  SELECT patient_id, as_of AS listed_on, clinic_id, probability, dlcn_points
  FROM ev
  WHERE event = 'listed'
  QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY as_of, rank, clinic_id) = 1
),
outcomes AS (            -- clinic feedback on or after the referral
  SELECT o.patient_id, o.outcome, o.outcome_date
  FROM clinic_outcomes o JOIN first_listed f USING (patient_id)
  WHERE o.outcome_date >= f.listed_on AND o.outcome_date <= $as_of::DATE
),
latest_outcome AS (      -- the latest; on the same day the most definite one
  SELECT patient_id, outcome
  FROM outcomes
  QUALIFY row_number() OVER (
    PARTITION BY patient_id
    ORDER BY outcome_date DESC,
      CASE outcome WHEN 'fh_genetic' THEN 1 WHEN 'fh_clinical' THEN 2 WHEN 'not_fh' THEN 3
                   WHEN 'declined' THEN 4 WHEN 'did_not_attend' THEN 5 ELSE 6 END
  ) = 1
),
first_visit AS (
  SELECT patient_id, min(outcome_date) AS visit_on
  FROM outcomes WHERE outcome IN ('fh_genetic', 'fh_clinical', 'not_fh')
  GROUP BY patient_id
),
lipid_drugs AS (         -- ATC C10 = lipid-modifying agents (docs/clinical-reference.md §10.4)
  SELECT m.patient_id, m.atc_code, m.dispensed_on, coalesce(m.strength_mg, 0) AS mg, f.listed_on
  FROM medications m JOIN first_listed f USING (patient_id)
  WHERE m.atc_code LIKE 'C10%' AND m.dispensed_on <= $as_of::DATE
),
before AS (              -- what the person took in the year before the referral
  SELECT patient_id, atc_code, max(mg) AS mg
  FROM lipid_drugs
  WHERE dispensed_on < listed_on AND dispensed_on >= listed_on - INTERVAL 365 DAY
  GROUP BY ALL
),
after AS (
  SELECT patient_id, atc_code, max(mg) AS mg
  FROM lipid_drugs WHERE dispensed_on >= listed_on
  GROUP BY ALL
),
treated_before AS (
  SELECT DISTINCT patient_id FROM before
),
treatment AS (           -- after referral: an agent not taken before, or a higher strength
  SELECT a.patient_id, bool_or(b.atc_code IS NULL OR a.mg > b.mg) AS new_or_stronger
  FROM after a LEFT JOIN before b USING (patient_id, atc_code)
  GROUP BY a.patient_id
),
ldl AS (
  SELECT l.patient_id, l.sample_date AS sampled_on, l.sampled_at, l.result_id, l.value, f.listed_on
  FROM usable_lab_results($as_of) l JOIN first_listed f USING (patient_id)
  WHERE l.analyte = 'ldl' AND l.censored IS NULL     -- a change needs exact numbers
),
ldl_before AS (
  SELECT patient_id, value FROM ldl WHERE sampled_on <= listed_on
  QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY sampled_at DESC, result_id DESC) = 1
),
ldl_after AS (           -- at least 28 days after referral: time for treatment to act
  SELECT patient_id, value FROM ldl WHERE sampled_on >= listed_on + INTERVAL 28 DAY
  QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY sampled_at DESC, result_id DESC) = 1
)
SELECT
  f.patient_id,
  f.listed_on,
  f.clinic_id,
  f.probability AS listed_probability,
  f.dlcn_points AS listed_dlcn_points,
  date_diff('day', s.flagged_on, f.listed_on) AS days_flag_to_listed,
  date_diff('day', f.listed_on, v.visit_on) AS days_listed_to_visit,
  o.outcome,
  tb.patient_id IS NOT NULL AS treated_before,
  coalesce(t.new_or_stronger, FALSE) AS new_or_stronger,
  t.patient_id IS NOT NULL AS treated_after,
  la.value - lb.value AS ldl_change_mmol
FROM first_listed f
JOIN first_seen s USING (patient_id)
LEFT JOIN latest_outcome o USING (patient_id)
LEFT JOIN first_visit v USING (patient_id)
LEFT JOIN treatment t USING (patient_id)
LEFT JOIN treated_before tb USING (patient_id)
LEFT JOIN ldl_before lb USING (patient_id)
LEFT JOIN ldl_after la USING (patient_id)
