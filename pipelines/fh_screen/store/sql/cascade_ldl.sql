-- Lipid results (LDL-C, TC, HDL, TG) and lipid-lowering dispensings of the people registered
-- as _cascade_people (the relatives), as of the run date ($1), so the cascade can judge each
-- relative on THE LDL-C the patient features score with (features.build.scoring_ldl: measured
-- untreated first, else the corrected estimate). arrived_on: run date of the delivery that
-- brought the result (NULL if unknown). Only these people: ranking every patient's results in
-- the region would cost most of the step.
SELECT r.patient_id, r.result_id, r.sampled_at, CAST(r.sampled_at AS DATE) AS sample_date,
       r.analyte, r.method, r.value, r.censored, d.as_of AS arrived_on
FROM lab_results r
LEFT JOIN deliveries d USING (delivery_id)
WHERE r.analyte IN ('ldl', 'tc', 'hdl', 'tg')
  AND r.status <> 'cancelled'
  AND r.value IS NOT NULL
  AND CAST(r.sampled_at AS DATE) <= $1
  AND r.patient_id IN (SELECT patient_id FROM _cascade_people)
