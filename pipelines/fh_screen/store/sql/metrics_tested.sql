-- Pilot metrics: who ever had a usable lipid result (usable_lab_results.sql), found in one
-- pass over the region's results into a temporary table of patient ids (the connection's
-- own; it is never written to the store) that every range of metrics_population.sql joins.
-- One pass, not one per range: a scan per range would grow with ranges x region. Bound: $as_of.
CREATE OR REPLACE TEMP TABLE metrics_tested AS
SELECT DISTINCT patient_id FROM usable_lipid_results($as_of)
