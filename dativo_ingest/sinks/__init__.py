"""Sinks: where staged rows are committed (Iceberg)."""
