-- Rows of one delivery in quarantine, per table (from stage and validation). A row that
-- broke several rules counts once: it is one delivered row.
SELECT table_name, count(DISTINCT row_number)
FROM quarantine
WHERE delivery_id = $delivery_id
GROUP BY table_name;
