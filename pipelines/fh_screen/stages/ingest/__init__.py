"""Stage and load: parse a delivery into staging tables (quarantining bad rows with a reason) and upsert accepted rows."""
