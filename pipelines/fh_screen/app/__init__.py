"""The entry layer: the ``fhscreen`` commands, the demo, the nightly job runner and what the Airflow DAGs call."""
