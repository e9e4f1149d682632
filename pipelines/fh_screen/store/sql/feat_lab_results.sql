-- Lab results usable as of the run date (usable_lab_results.sql: withdrawn results, results
-- without a value and later samples excluded).
SELECT patient_id, result_id, sampled_at, sample_date, analyte, method, value
FROM usable_lab_results($as_of)
