-- Analyte codes in this delivery never seen in an earlier delivery (only once there is history).
-- Parameter: $delivery_id.
SELECT s.code, s.analyte, count(*) AS n
FROM stg_lab_results s
WHERE EXISTS (SELECT 1 FROM lab_results WHERE delivery_id <> $delivery_id)
  AND NOT EXISTS (SELECT 1 FROM lab_results l WHERE l.code = s.code AND l.delivery_id <> $delivery_id)
GROUP BY ALL
ORDER BY s.code;
