"""ODCS quality rules, evaluated on the staged rows before the commit (see ``evaluate.py``)."""

from dativo_ingest.quality.evaluate import QualityEvaluator, RuleResult, check_rules, evaluate
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
    "QualityEvaluator",
    "Rule",
    "RuleResult",
    "Threshold",
    "check_rules",
    "evaluate",
    "failed",
    "failure_message",
    "quality_summary",
    "rules_for_asset",
    "snapshot_properties",
]
