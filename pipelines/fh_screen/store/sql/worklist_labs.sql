-- Worklist details: the usable lipid results (usable_lab_results.sql) of the patients
-- registered as _listed, in sample order per analyte. Bound: $as_of.
SELECT patient_id, analyte, sample_date AS day, value, censored
FROM usable_lipid_results($as_of)
WHERE patient_id IN (SELECT patient_id FROM _listed)
ORDER BY patient_id, analyte, sampled_at
