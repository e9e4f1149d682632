-- The people the cascade can reach from its possible index cases (registered as
-- _cascade_people): everyone within $1 links of one in the relations graph, read in either
-- direction, the index cases included. The cascade reads relations and patients for these
-- people only, so a night's cascade costs the families of its index cases, not the region
-- (fh_screen.stages.cascade.step.FAMILY_LINKS says why the radius is enough).
WITH RECURSIVE links AS (
  SELECT patient_id AS from_id, relative_id AS to_id FROM relations
  UNION ALL
  SELECT relative_id, patient_id FROM relations
),
reach(patient_id, hops) AS (
  SELECT DISTINCT patient_id, 0 FROM _cascade_people
  UNION
  SELECT l.to_id, r.hops + 1
  FROM reach r JOIN links l ON l.from_id = r.patient_id
  WHERE r.hops < $1
)
SELECT DISTINCT patient_id FROM reach
