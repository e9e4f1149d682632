"""Persistence edges: the DuckDB store (the only package that imports duckdb) and the output files (owner-only, atomic)."""
