"""Staging in DuckDB: cast to the asset schema, validate, dedup, quarantine."""
