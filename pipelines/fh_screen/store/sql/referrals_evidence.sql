-- Evidence per patient for prospective flags (fh_screen.stages.referrals.prospective): the
-- latest clinical date (evidence_on) and the latest run date of a delivery that brought some
-- of it (arrived_on). Bound: $as_of. Needs _fh_diagnosed (cascade_fh_diagnosis.sql) and
-- _evidence_for (patient_id: the patients whose evidence is wanted, tonight's eligible) registered.
-- Every figure is per patient, so reading only the wanted patients' rows gives them the same
-- answer as reading everyone's, at the cost of the night's candidates, not of the region.
WITH wanted AS (
  SELECT DISTINCT patient_id FROM _evidence_for
),
arrival AS (
  SELECT delivery_id, as_of AS arrived_on FROM deliveries
),
own AS (
  -- a high result: each patient's highest LDL-C and highest total cholesterol (latest of
  -- equal values). A lower retest, e.g. on treatment, is not new evidence of FH.
  -- arg_max over (value, sampled_at, result_id), a unique key, picks that one row without
  -- sorting each patient's results (one struct, so a NULL delivery_id stays that row's).
  SELECT patient_id, top.dated, top.delivery_id FROM (
    SELECT patient_id, arg_max({'dated': sample_date, 'delivery_id': delivery_id},
                               (value, sampled_at, result_id)) AS top
    FROM usable_lab_results($as_of)
    WHERE analyte IN ('ldl', 'tc') AND patient_id IN (SELECT patient_id FROM wanted)
    GROUP BY patient_id, analyte)
  UNION ALL
  SELECT patient_id, outcome_date, delivery_id FROM clinic_outcomes
  WHERE outcome_date <= $as_of AND patient_id IN (SELECT patient_id FROM wanted)
  UNION ALL
  SELECT patient_id, recorded_on, delivery_id FROM family_history
  WHERE recorded_on <= $as_of AND patient_id IN (SELECT patient_id FROM wanted)
),
own_dated AS (
  SELECT o.patient_id, o.dated, a.arrived_on FROM own o LEFT JOIN arrival a USING (delivery_id)
),
fh_confirmed AS (        -- FH confirmed in a person: a confirmed clinic outcome or an FH diagnosis
  SELECT c.patient_id, c.outcome_date AS dated, a.arrived_on
  FROM clinic_outcomes c LEFT JOIN arrival a USING (delivery_id)
  WHERE c.outcome IN ('fh_genetic', 'fh_clinical') AND c.outcome_date <= $as_of
  UNION ALL
  SELECT patient_id, fh_diagnosed_on, dx_arrived_on FROM _fh_diagnosed
),
pairs AS (               -- relations in both directions, from the wanted patients
  SELECT patient_id, relative_id FROM relations WHERE patient_id IN (SELECT patient_id FROM wanted)
  UNION
  SELECT relative_id, patient_id FROM relations WHERE relative_id IN (SELECT patient_id FROM wanted)
),
family AS (
  SELECT p.patient_id, f.dated, f.arrived_on
  FROM pairs p JOIN fh_confirmed f ON f.patient_id = p.relative_id
),
everything AS (
  SELECT * FROM own_dated
  UNION ALL
  SELECT * FROM family
)
SELECT patient_id, max(dated) AS evidence_on, max(arrived_on) AS arrived_on
FROM everything
GROUP BY patient_id
