-- Worklist details: the usable lipid results (usable_lab_results.sql) of the patients
-- registered as _listed, in sample order per analyte. Bound: $as_of. The table shows day,
-- value and censoring; result_id, sampled_at and method are what the LDL-C trend needs
-- (features.build.ldl_series), so the region's lab results are scanned once for both.
SELECT patient_id, analyte, sample_date AS day, value, censored, result_id, sampled_at, sample_date, method
FROM usable_lipid_results($as_of)
WHERE patient_id IN (SELECT patient_id FROM _listed)
ORDER BY patient_id, analyte, sampled_at
