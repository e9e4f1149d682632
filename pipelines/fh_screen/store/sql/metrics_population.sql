-- Pilot metrics: everyone in the register with whether they were resident at the run date
-- and whether they ever had a usable lipid result (metrics_tested.sql, run first), for the
-- patients from $lo up to but not including $hi (NULL: no bound), so that the metrics hold one
-- range of the region at a time. Bound: $as_of, $lo, $hi.
SELECT
  p.patient_id,
  p.sex,
  p.practice_id,
  date_diff('year', p.birth_date, $as_of::DATE)
    - CASE WHEN strftime(p.birth_date, '%m-%d') > strftime($as_of::DATE, '%m-%d') THEN 1 ELSE 0 END AS age_years,
  (p.deceased_date IS NULL OR p.deceased_date > $as_of::DATE)
    AND (p.moved_out_date IS NULL OR p.moved_out_date > $as_of::DATE) AS resident,
  t.patient_id IS NOT NULL AS tested
FROM patients p
LEFT JOIN metrics_tested t USING (patient_id)
WHERE ($lo::VARCHAR IS NULL OR p.patient_id >= $lo::VARCHAR) AND ($hi::VARCHAR IS NULL OR p.patient_id < $hi::VARCHAR)
