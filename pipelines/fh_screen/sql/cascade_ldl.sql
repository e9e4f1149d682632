-- Latest non-cancelled LDL-C per patient sampled on or before the run date ($1).
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
