"""The quality rules of an asset, compiled from its ODCS ``quality`` entries into what the evaluator measures.

Three sources, all at the object or the property level:

- ``quality`` entries of type ``library`` (``rowCount``, ``nullValues``, ``missingValues``, ``invalidValues``,
  ``duplicateValues``) and ``sql`` (one ``SELECT`` over the staged rows, ``{object}``/``{property}`` substituted);
- a field's ``unique: true`` (a ``duplicateValues`` rule that must be 0);
- a field's ODCS ``logicalTypeOptions`` bounds (``minimum``, ``maximum``, ``exclusiveMinimum``,
  ``exclusiveMaximum``, ``pattern``, ``minLength``, ``maxLength``: an ``invalidValues`` rule that must be 0).

``text`` and ``custom`` entries are listed as skipped: dativo does not run other engines' checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dativo_ingest.config.models import INVALID_VALUES_ARGUMENTS, AssetDefinition, QualityRule

#: ``logicalTypeOptions`` keys that bound a value (they become an implicit ``invalidValues`` rule)
BOUND_OPTIONS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "minLength", "maxLength")


@dataclass(frozen=True)
class Threshold:
    """One ODCS operator and its value: ``mustBe: 0`` -> ``Threshold("mustBe", 0)``."""

    operator: str
    value: Any

    def passes(self, observed: Any) -> bool:
        """Does ``observed`` satisfy the operator? A missing observation never does."""
        if observed is None:
            return False
        op, v = self.operator, self.value
        if op in ("mustBe", "mustNotBe"):
            equal = _same(observed, v)
            return equal if op == "mustBe" else not equal
        if isinstance(observed, bool) or not isinstance(observed, int | float):
            return False
        if op == "mustBeGreaterThan":
            return observed > v
        if op == "mustBeGreaterOrEqualTo":
            return observed >= v
        if op == "mustBeLessThan":
            return observed < v
        if op == "mustBeLessOrEqualTo":
            return observed <= v
        low, high = min(v), max(v)
        inside = low <= observed <= high
        return inside if op == "mustBeBetween" else not inside

    def describe(self) -> str:
        """``= 0``, ``< 5``, ``between 1 and 10`` …"""
        symbols = {"mustBe": "=", "mustNotBe": "!=", "mustBeGreaterThan": ">", "mustBeGreaterOrEqualTo": ">=",
                   "mustBeLessThan": "<", "mustBeLessOrEqualTo": "<="}
        if self.operator in symbols:
            return f"{symbols[self.operator]} {_show(self.value)}"
        low, high = min(self.value), max(self.value)
        word = "between" if self.operator == "mustBeBetween" else "not between"
        return f"{word} {_show(low)} and {_show(high)}"


def _same(observed: Any, expected: Any) -> bool:
    if isinstance(observed, bool) or isinstance(expected, bool):
        return isinstance(observed, bool) and isinstance(expected, bool) and observed == expected
    if isinstance(observed, int | float) and isinstance(expected, int | float):
        return math.isclose(float(observed), float(expected), rel_tol=0, abs_tol=1e-9)
    return bool(observed == expected)


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Rule:
    """One measurable rule: what to measure (metric or query), where (object or property), and its threshold."""

    name: str
    level: str  # "object" | "property"
    kind: str  # "library" | "sql" | "text" | "custom"
    threshold: Threshold | None
    metric: str | None = None
    #: the field of a property-level rule
    prop: str | None = None
    #: the fields a duplicateValues rule groups by; the field of a property-level rule
    columns: tuple[str, ...] = ()
    #: invalidValues criteria (validValues, pattern, minimum …) or missingValues' list
    arguments: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    unit: str = "rows"
    severity: str | None = None
    #: why dativo does not evaluate it (text and custom rules)
    skipped: str | None = None

    @property
    def per_batch(self) -> bool:
        """Can this rule be summed batch by batch (rowCount, nullValues, missingValues, invalidValues)?"""
        return self.kind == "library" and self.metric in ("rowCount", "nullValues", "missingValues", "invalidValues")


def _threshold(entry: QualityRule) -> Threshold | None:
    ops = entry.operators
    if len(ops) != 1:
        return None
    (op, value), = ops.items()
    return Threshold(op, value)


def _rule(entry: QualityRule, *, level: str, owner: str, prop: str | None) -> Rule:
    kind = entry.kind
    metric = entry.metric_name if kind == "library" else None
    base = entry.id or entry.name or f"{owner}.{metric or kind}"
    severity = entry.severity
    if kind in ("text", "custom"):
        reason = "a text rule describes, it is not measured" if kind == "text" else \
            f"custom rules run in their own engine ({entry.engine or 'no engine named'}), not in dativo"
        return Rule(base, level, kind, None, prop=prop, severity=severity, skipped=reason)
    columns: tuple[str, ...] = ()
    if metric == "duplicateValues":
        columns = tuple((entry.arguments or {}).get("properties") or ()) if level == "object" else (prop or "",)
    elif prop is not None:
        columns = (prop,)
    arguments: dict[str, Any] = {}
    if metric == "invalidValues":
        given = entry.arguments or {}
        arguments = {k: given[k] for k in INVALID_VALUES_ARGUMENTS if given.get(k) is not None}
    elif metric == "missingValues":
        arguments = {"missingValues": list((entry.arguments or {}).get("missingValues") or [None, ""])}
    return Rule(base, level, kind, _threshold(entry), metric=metric, prop=prop, columns=columns,
                arguments=arguments, query=entry.query if kind == "sql" else None, unit=entry.unit or "rows",
                severity=severity)


def _unique_names(rules: list[Rule]) -> list[Rule]:
    seen: dict[str, int] = {}
    out = []
    for r in rules:
        n = seen.get(r.name, 0) + 1
        seen[r.name] = n
        out.append(r if n == 1 else Rule(**{**r.__dict__, "name": f"{r.name}#{n}"}))
    return out


def rules_for_asset(asset: AssetDefinition) -> list[Rule]:
    """Every quality rule of ``asset`` in declaration order (object first, then field by field), names unique."""
    owner = asset.object or asset.name
    rules = [_rule(e, level="object", owner=owner, prop=None) for e in asset.quality or []]
    for f in asset.fields:
        rules += [_rule(e, level="property", owner=f.name, prop=f.name) for e in f.quality or []]
        if f.unique:
            rules.append(Rule(f"{f.name}.unique", "property", "library", Threshold("mustBe", 0),
                              metric="duplicateValues", prop=f.name, columns=(f.name,)))
        options = (f.model_extra or {}).get("logicalTypeOptions")
        bounds = {k: options[k] for k in BOUND_OPTIONS if isinstance(options, dict) and options.get(k) is not None}
        if bounds:
            rules.append(Rule(f"{f.name}.logicalTypeOptions", "property", "library", Threshold("mustBe", 0),
                              metric="invalidValues", prop=f.name, columns=(f.name,), arguments=bounds))
    return _unique_names(rules)


__all__ = ["BOUND_OPTIONS", "Rule", "Threshold", "rules_for_asset"]
