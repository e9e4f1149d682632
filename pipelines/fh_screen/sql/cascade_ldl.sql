-- Latest non-cancelled LDL-C per patient sampled on or before the run date ($1), and whether
-- a lipid-lowering drug (ATC C10) was dispensed in the 365 days up to the sample: such a
-- value understates the untreated level (shared/clinical §4), which the status detail says.
-- The 365-day window is a working choice (derived), not a published rule.
WITH latest AS (
  SELECT patient_id,
         value AS ldl_mmol,
         censored,
         CAST(sampled_at AS DATE) AS ldl_date
  FROM lab_results
  WHERE analyte = 'ldl'
    AND status <> 'cancelled'
    AND value IS NOT NULL
    AND CAST(sampled_at AS DATE) <= $1
  QUALIFY row_number() OVER (PARTITION BY patient_id ORDER BY sampled_at DESC, result_id DESC) = 1
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
