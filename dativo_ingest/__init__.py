"""dativo-ingest: headless, config-driven ingestion into Apache Iceberg."""

__version__ = "0.1.0"
