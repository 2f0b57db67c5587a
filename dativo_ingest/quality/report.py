"""Quality results for people and for the commit: the snapshot property ``dativo.quality`` and a one-line verdict.

The runner decides what a failure means (strict: the run fails and commits nothing; warn: the results are
committed and the run exits 1); these helpers only say what was measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from dativo_ingest.quality.evaluate import RuleResult

#: the snapshot summary property (Iceberg) / run manifest key that holds a commit's rule results
QUALITY_PROPERTY = "dativo.quality"
#: failed rules named in the one-line message; the rest are counted
MAX_NAMED = 5


def failed(results: Sequence[RuleResult]) -> list[RuleResult]:
    """The rules that were evaluated and did not pass."""
    return [r for r in results if r.passed is False]


def quality_summary(results: Sequence[RuleResult]) -> dict[str, Any]:
    """``{"passed": n, "failed": n, "skipped": n, "rules": [...]}``: for the run summary and the snapshot."""
    return {
        "passed": sum(1 for r in results if r.passed is True),
        "failed": len(failed(results)),
        "skipped": sum(1 for r in results if r.passed is None),
        "rules": [r.to_dict() for r in results],
    }


def snapshot_properties(results: Sequence[RuleResult]) -> dict[str, str]:
    """``{"dativo.quality": <JSON>}`` to commit with the data (empty when the asset has no rules)."""
    if not results:
        return {}
    return {QUALITY_PROPERTY: orjson.dumps(quality_summary(results)).decode()}


def _one(result: RuleResult) -> str:
    if result.error:
        return f"{result.rule}: {result.error}"
    unit = "%" if result.unit == "percent" else ""
    return f"{result.rule}: observed {result.observed}{unit}, expected {result.expected}{unit}"


def failure_message(results: Sequence[RuleResult], asset_name: str) -> str | None:
    """One line naming the failed rules (observed vs expected), or None when every evaluated rule passed."""
    bad = failed(results)
    if not bad:
        return None
    evaluated = sum(1 for r in results if r.passed is not None)
    named = "; ".join(_one(r) for r in bad[:MAX_NAMED])
    more = f"; and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else ""
    return f"{len(bad)} of {evaluated} quality rule(s) failed on asset {asset_name}: {named}{more}"


__all__ = ["MAX_NAMED", "QUALITY_PROPERTY", "failed", "failure_message", "quality_summary", "snapshot_properties"]
