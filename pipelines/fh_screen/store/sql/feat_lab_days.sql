-- The lab results the features read, reduced to one row per patient and sample day
-- (store/labs.py: over the store's usable results, feat_lab_results.sql, or over given rows).
-- The caller names its rows `labs` (patient_id, result_id, sampled_at, sample_date, analyte,
-- method, value).
--   n_results                 every result of the day (the patient's n_lab_results is their sum)
--   ldl_meas ldl_calc tc hdl tg
--                             the lipid profile: the day's LAST result of each kind, by
--                             sampled_at then result_id (a repeat or correction later that day
--                             wins); LDL-C whose method is 'calculated' is the lab's own
--                             calculation, any other method a measurement
--   <analyte>_max / _min      the day's highest (lowest) result of each analyte the other
--                             features read: Lp(a) and apoB maxima, and the secondary causes
--                             of hypercholesterolaemia (features.build._secondary: the highest
--                             or lowest value near the index sample; one per day is enough,
--                             the day being the finest date those features compare)
-- A day with no lipid result has NULL in all five lipid columns and is not a lipid sample.
SELECT patient_id, sample_date,
  count(*)::INTEGER AS n_results,
  arg_max_null(value, CASE WHEN analyte = 'ldl' AND method IS DISTINCT FROM 'calculated' THEN _order END) AS ldl_meas,
  arg_max_null(value, CASE WHEN analyte = 'ldl' AND method = 'calculated' THEN _order END) AS ldl_calc,
  arg_max_null(value, CASE WHEN analyte = 'tc' THEN _order END) AS tc,
  arg_max_null(value, CASE WHEN analyte = 'hdl' THEN _order END) AS hdl,
  arg_max_null(value, CASE WHEN analyte = 'tg' THEN _order END) AS tg,
  max(CASE WHEN analyte = 'lpa' THEN value END) AS lpa_max,
  max(CASE WHEN analyte = 'lpa_molar' THEN value END) AS lpa_molar_max,
  max(CASE WHEN analyte = 'apob' THEN value END) AS apob_max,
  max(CASE WHEN analyte = 'tsh' THEN value END) AS tsh_max,
  max(CASE WHEN analyte = 'hba1c' THEN value END) AS hba1c_max,
  max(CASE WHEN analyte = 'tg' THEN value END) AS tg_max,
  min(CASE WHEN analyte = 'albumin' THEN value END) AS albumin_min,
  max(CASE WHEN analyte = 'uacr' THEN value END) AS uacr_max,
  max(CASE WHEN analyte = 'alp' THEN value END) AS alp_max,
  max(CASE WHEN analyte = 'ggt' THEN value END) AS ggt_max,
  max(CASE WHEN analyte = 'alat' THEN value END) AS alat_max,
  min(CASE WHEN analyte = 'egfr' THEN value END) AS egfr_min,
  max(CASE WHEN analyte = 'creatinine' THEN value END) AS creatinine_max
FROM (
  -- The order of "last": one binary key per row, compared as bytes (a missing time or id
  -- first). A (sampled_at, result_id) struct compared field by field cost a third more.
  SELECT *, create_sort_key(sampled_at, 'ASC NULLS FIRST', result_id, 'ASC NULLS FIRST') AS _order
  FROM labs
)
GROUP BY patient_id, sample_date
