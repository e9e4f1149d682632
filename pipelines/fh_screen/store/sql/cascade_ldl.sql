-- Usable lipid results (usable_lab_results.sql: LDL-C, TC, HDL, TG) of the people registered
-- as _cascade_people (the relatives), as of the run date ($1), so the cascade can judge each
-- relative on THE LDL-C the patient features score with (features.build.scoring_ldl: measured
-- untreated first, else the corrected estimate). arrived_on: run date of the delivery that
-- brought the result (NULL if unknown). Only these people: ranking every patient's results in
-- the region would cost most of the step.
SELECT r.patient_id, r.result_id, r.sampled_at, r.sample_date,
       r.analyte, r.method, r.value, r.censored, d.as_of AS arrived_on
FROM usable_lipid_results($1) r
LEFT JOIN deliveries d USING (delivery_id)
WHERE r.patient_id IN (SELECT patient_id FROM _cascade_people)
