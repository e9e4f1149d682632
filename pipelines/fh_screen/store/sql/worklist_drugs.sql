-- Worklist details: current lipid-lowering treatment (ATC C10, dispensed after $since and on or
-- before $as_of) of the patients registered as _listed: per drug the last dispensing and its
-- strength, most recent first.
SELECT patient_id, atc_code, max(dispensed_on) AS last_on,
       arg_max(strength_mg, dispensed_on) AS strength_mg
FROM medications
WHERE patient_id IN (SELECT patient_id FROM _listed) AND atc_code LIKE 'C10%'
  AND dispensed_on > $since AND dispensed_on <= $as_of
GROUP BY patient_id, atc_code
ORDER BY patient_id, last_on DESC, atc_code
