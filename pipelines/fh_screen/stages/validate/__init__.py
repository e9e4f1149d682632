"""Validate a staged delivery with the reviewed Great Expectations suites; failing rows go to quarantine with a reason."""
