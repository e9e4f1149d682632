-- Row checks for stg_relations: the patient is known (the relative may be absent from
-- patients, per the contract) and nobody is their own relative.
CREATE OR REPLACE VIEW gx_relations AS
SELECT s.*,
       k.patient_id IS NOT NULL AS patient_known,
       s.patient_id <> s.relative_id AS not_self_link
FROM stg_relations s
LEFT JOIN gx_known_patients k ON k.patient_id = s.patient_id;
