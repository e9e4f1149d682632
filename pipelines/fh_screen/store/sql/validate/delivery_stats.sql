-- Rows received per delivery and table, kept to spot a delivery far smaller than the one before.
CREATE TABLE IF NOT EXISTS delivery_stats (
  delivery_id  VARCHAR NOT NULL,
  table_name   VARCHAR NOT NULL,
  as_of        DATE NOT NULL,
  received     BIGINT NOT NULL,
  recorded_at  TIMESTAMP NOT NULL,
  PRIMARY KEY (delivery_id, table_name)
);
