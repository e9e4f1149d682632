-- Record a loaded delivery. Loading the same content again keeps the first as_of and
-- loaded_at (nothing changed); a folder of the same name with other content is recorded anew.
INSERT INTO deliveries VALUES ($delivery_id, $content_hash, $as_of, $loaded_at)
ON CONFLICT (delivery_id) DO UPDATE SET
  content_hash = excluded.content_hash,
  as_of = CASE WHEN deliveries.content_hash = excluded.content_hash
               THEN deliveries.as_of ELSE excluded.as_of END,
  loaded_at = CASE WHEN deliveries.content_hash = excluded.content_hash
                   THEN deliveries.loaded_at ELSE excluded.loaded_at END;
