-- Rows received in the previous delivery of one table (?1), other than this delivery (?2).
-- A table of the day's events (?3 false) is never compared with its first delivery: that is
-- the history load, hundreds of times the size of a night.
SELECT received FROM (
  SELECT delivery_id, received, as_of, recorded_at,
         row_number() OVER (ORDER BY as_of, recorded_at) AS nth
  FROM delivery_stats WHERE table_name = ?)
WHERE delivery_id <> ? AND (nth > 1 OR ?)
ORDER BY as_of DESC, recorded_at DESC LIMIT 1
