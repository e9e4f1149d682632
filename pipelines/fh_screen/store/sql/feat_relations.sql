SELECT DISTINCT patient_id, relative_id, relationship
FROM relations
WHERE patient_id <> relative_id
