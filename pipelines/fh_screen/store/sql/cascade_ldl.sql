-- Latest non-cancelled LDL-C per patient sampled on or before the run date ($1), and whether
-- a lipid-lowering drug (ATC C10) was dispensed in the 365 days up to the sample: such a
-- value understates the untreated level (shared/clinical §4), which the status detail says.
-- The 365-day window is a working choice (derived), not a published rule.
-- ldl_arrived_on: run date of the delivery that brought the result (NULL if unknown).
-- Only for the people in the registered frame _cascade_people (the relatives): ranking
-- every patient's results in the region would cost most of the step.
WITH latest AS (
  SELECT r.patient_id,
         r.value AS ldl_mmol,
         r.censored,
         CAST(r.sampled_at AS DATE) AS ldl_date,
         d.as_of AS ldl_arrived_on
  FROM lab_results r
  LEFT JOIN deliveries d USING (delivery_id)
  WHERE analyte = 'ldl'
    AND status <> 'cancelled'
    AND value IS NOT NULL
    AND CAST(sampled_at AS DATE) <= $1
    AND r.patient_id IN (SELECT patient_id FROM _cascade_people)
  QUALIFY row_number() OVER (PARTITION BY r.patient_id ORDER BY r.sampled_at DESC, r.result_id DESC) = 1
)
SELECT l.*,
       EXISTS (
         SELECT 1 FROM medications m
         WHERE m.patient_id = l.patient_id
           AND m.atc_code LIKE 'C10%'
           AND m.dispensed_on <= l.ldl_date
           AND m.dispensed_on > l.ldl_date - INTERVAL 365 DAY
       ) AS ldl_on_treatment
FROM latest l
