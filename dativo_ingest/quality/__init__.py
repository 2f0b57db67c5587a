"""ODCS quality rules, evaluated on the staged rows before the commit.

``evaluate.py`` (DuckDB) is imported by name where rules are measured, never here: a run of an asset without
rules loads no DuckDB."""

from dativo_ingest.quality.report import (
    QUALITY_PROPERTY,
    failed,
    failure_message,
    quality_summary,
    snapshot_properties,
)
from dativo_ingest.quality.rules import Rule, Threshold, rules_for_asset

__all__ = [
    "QUALITY_PROPERTY",
    "Rule",
    "Threshold",
    "failed",
    "failure_message",
    "quality_summary",
    "rules_for_asset",
    "snapshot_properties",
]
