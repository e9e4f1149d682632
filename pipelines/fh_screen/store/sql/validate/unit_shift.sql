-- Units of each analyte code in this delivery against all earlier deliveries: a unit that
-- now carries a large share of a code's results but was (nearly) unseen before.
-- Parameters: $delivery_id, $min_share, $max_previous_share.
WITH now_units AS (
  SELECT code, lower(trim(unit_raw)) AS unit, count(*) AS n,
         count(*) / sum(count(*)) OVER (PARTITION BY code) AS share
  FROM stg_lab_results GROUP BY 1, 2
),
before_units AS (
  SELECT code, lower(trim(unit_raw)) AS unit,
         count(*) / sum(count(*)) OVER (PARTITION BY code) AS share
  FROM lab_results WHERE delivery_id <> $delivery_id GROUP BY 1, 2
),
before_main AS (
  SELECT code, arg_max(unit, share) AS main_unit FROM before_units GROUP BY code
)
SELECT n.code, n.unit, n.share, coalesce(b.share, 0) AS previous_share, m.main_unit
FROM now_units n
JOIN before_main m USING (code)
LEFT JOIN before_units b ON b.code = n.code AND b.unit = n.unit
WHERE n.share >= $min_share AND coalesce(b.share, 0) < $max_previous_share
ORDER BY n.code, n.unit;
