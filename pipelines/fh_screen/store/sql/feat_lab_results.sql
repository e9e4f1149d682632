-- Lab results usable as of the run date: withdrawn (cancelled) results and later samples excluded.
SELECT patient_id, result_id, sampled_at, CAST(sampled_at AS DATE) AS sample_date,
       analyte, method, value
FROM lab_results
WHERE status <> 'cancelled'
  AND value IS NOT NULL
  AND CAST(sampled_at AS DATE) <= $as_of
