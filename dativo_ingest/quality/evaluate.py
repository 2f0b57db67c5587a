"""Evaluate an asset's quality rules on the staged rows, batch by batch, in bounded memory.

``QualityEvaluator.add`` takes each Arrow table or record batch of staged rows; ``results()`` measures what
is left and compares every rule with its threshold. Rules that can be summed per batch (``rowCount``,
``nullValues``, ``missingValues``, ``invalidValues``) are one DuckDB aggregate over each batch (zero copy);
``duplicateValues`` keeps only its key columns in a DuckDB table; ``sql`` rules keep the rows in a DuckDB
table named after the object. Those tables live in a DuckDB of their own, limited in memory and spilling
to disk, with file and network access switched off before any rule's SQL runs.

Strict or warn is the caller's decision: the evaluator returns results, it never raises on a failed rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from dativo_ingest.config.models import AssetDefinition
from dativo_ingest.errors import ConfigError
from dativo_ingest.machine import duckdb_connection
from dativo_ingest.quality.rules import Rule, rules_for_asset
from dativo_ingest.sqltext import quote_ident, quote_literal
from dativo_ingest.stage.types import parse_type

_BATCH = "__dativo_quality_batch"
_PLACEHOLDER = re.compile(r"\$?\{\s*(object|table|model|property|column|field)\s*\}")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN")


@dataclass(frozen=True)
class RuleResult:
    """What one rule measured on the staged rows, and whether that passes its threshold."""

    rule: str
    level: str
    kind: str
    metric: str | None
    property: str | None
    observed: int | float | bool | None
    expected: str | None
    #: None when the rule was not evaluated (``skipped``)
    passed: bool | None
    unit: str = "rows"
    severity: str | None = None
    error: str | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (keys with no value left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _literal(value: Any, *, text: bool) -> str:
    if value is None:
        return "NULL"
    if text:
        return quote_literal(str(value).lower() if isinstance(value, bool) else str(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(value)
    return quote_literal(str(value))


def _is_text(schema: pa.Schema, column: str) -> bool:
    t = schema.field(column).type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def invalid_predicate(column: str, arguments: dict[str, Any], *, text: bool) -> str:
    """SQL that is true where a non-null value breaks any of the ``invalidValues`` criteria."""
    col = quote_ident(column)
    as_text = col if text else f"CAST({col} AS VARCHAR)"
    broken: list[str] = []
    valid = [v for v in arguments.get("validValues") or [] if v is not None]
    if "validValues" in arguments:
        values = ", ".join(_literal(v, text=text) for v in valid)
        broken.append(f"{col} NOT IN ({values})" if values else "TRUE")
    if arguments.get("pattern") is not None:
        broken.append(f"NOT regexp_matches({as_text}, {quote_literal(str(arguments['pattern']))})")
    for key, op in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="), ("exclusiveMaximum", ">=")):
        if arguments.get(key) is not None:
            broken.append(f"{col} {op} {_literal(arguments[key], text=text)}")
    if arguments.get("minLength") is not None:
        broken.append(f"length({as_text}) < {int(arguments['minLength'])}")
    if arguments.get("maxLength") is not None:
        broken.append(f"length({as_text}) > {int(arguments['maxLength'])}")
    return f"({col} IS NOT NULL AND ({' OR '.join(broken) or 'FALSE'}))"


def _count_predicate(rule: Rule, schema: pa.Schema) -> str | None:
    """The rows a per-batch library rule counts (None: every row, i.e. rowCount)."""
    if rule.metric == "rowCount":
        return None
    column = rule.columns[0]
    col = quote_ident(column)
    text = _is_text(schema, column)
    if rule.metric == "nullValues":
        return f"{col} IS NULL"
    if rule.metric == "missingValues":
        values = ", ".join(_literal(v, text=text) for v in rule.arguments["missingValues"] if v is not None)
        return f"({col} IS NULL OR {col} IN ({values}))" if values else f"{col} IS NULL"
    return invalid_predicate(column, rule.arguments, text=text)


def _substitute(query: str, table: str, column: str | None) -> str:
    def repl(match: re.Match[str]) -> str:
        if match.group(1) in ("object", "table", "model"):
            return quote_ident(table)
        if column is None:
            raise ValueError(f"'{match.group(0)}' names a property, and this rule is on the object")
        return quote_ident(column)

    return _PLACEHOLDER.sub(repl, query)


def _scalar(value: Any) -> int | float | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal | float):
        return float(value)
    raise TypeError(type(value).__name__)


class QualityEvaluator:
    """Measures ``rules`` over the staged rows given to ``add``; ``results()`` compares them with their thresholds.

    ``schema`` is the Arrow schema of those rows; ``object_name`` names the table ``sql`` rules query
    (``{object}``). Problems a rule has before any row is seen (an unknown column, a query that does not
    parse, a regex DuckDB rejects) raise a one-line ``ConfigError`` naming ``source`` (the asset file).
    """

    def __init__(self, rules: Sequence[Rule], schema: pa.Schema, *, object_name: str,
                 source: str | Path | None = None, spill_dir: str | Path | None = None,
                 memory_limit: str = "256MB") -> None:
        self.rules = list(rules)
        self.schema = schema
        self.object_name = object_name
        self.source = source
        self.rows = 0
        self._counts: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._dup_tables: dict[tuple[str, ...], str] = {}
        self._queries: dict[str, str] = {}
        self.con = duckdb_connection(memory_limit=memory_limit, spill_dir=spill_dir)
        try:
            self._prepare()
        except BaseException:
            self.con.close()
            raise

    @classmethod
    def for_asset(cls, asset: AssetDefinition, schema: pa.Schema, *, source: str | Path | None = None,
                  spill_dir: str | Path | None = None) -> QualityEvaluator:
        """The evaluator of every rule of ``asset`` (``rules_for_asset``)."""
        return cls(rules_for_asset(asset), schema, object_name=asset.object or asset.name, source=source,
                   spill_dir=spill_dir)

    # -- setup -----------------------------------------------------------------------------------------
    def _fail(self, rule: Rule, problem: str, fix: str) -> ConfigError:
        where = f"quality rule '{rule.name}'" + (f" on {rule.prop}" if rule.prop else "")
        return ConfigError(self.source, f"{where}: {problem}", field="quality", fix=fix)

    def _prepare(self) -> None:
        names = set(self.schema.names)
        for rule in self.active:
            missing = [c for c in rule.columns if c not in names]
            if missing:
                raise self._fail(rule, f"names {', '.join(missing)}, not a column of the staged rows",
                                 "use the names of the asset's fields")
        # one row of NULLs: enough for DuckDB to bind every rule and cast its constants, nothing to count
        nulls = pa.table({f.name: pa.nulls(1, f.type) for f in self.schema}, schema=self.schema)
        self.con.register(_BATCH, nulls)
        if any(r.kind == "sql" for r in self.active):
            self.con.execute(f"CREATE TABLE {quote_ident(self.object_name)} AS SELECT * FROM {_BATCH} LIMIT 0")
        self.con.execute("CREATE SCHEMA __dativo_quality")  # our tables apart from the object's name
        for rule in self.active:
            if rule.metric == "duplicateValues" and rule.columns not in self._dup_tables:
                table = f"__dativo_quality.keys_{len(self._dup_tables)}"
                cols = ", ".join(quote_ident(c) for c in rule.columns)
                self.con.execute(f"CREATE TABLE {table} AS SELECT {cols} FROM {_BATCH} LIMIT 0")
                self._dup_tables[rule.columns] = table
        # no rule's SQL may read or write files, attach databases, or load extensions
        self.con.execute("SET enable_external_access=false")
        self.con.execute("SET lock_configuration=true")
        for rule in self.active:
            if rule.per_batch:
                self._check(rule, lambda r=rule: self.con.execute(self._aggregate_sql([r])).fetchall())
            elif rule.kind == "sql":
                self._prepare_sql(rule)
        self.con.unregister(_BATCH)

    def _check(self, rule: Rule, run: Any) -> None:
        try:
            run()
        except duckdb.Error as exc:
            raise self._fail(rule, f"DuckDB rejects it: {str(exc).splitlines()[0][:200]}",
                             "correct the rule's arguments (see docs/odcs.md, quality rules)") from None

    def _prepare_sql(self, rule: Rule) -> None:
        try:
            query = _substitute(rule.query or "", self.object_name, rule.prop)
        except ValueError as exc:
            raise self._fail(rule, str(exc), "use {object} here, or move the rule under a property") from None
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise self._fail(rule, f"the query does not parse: {str(exc).splitlines()[0][:200]}",
                             "write one SELECT over {object}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise self._fail(rule, "the query must be exactly one SELECT statement", "write one SELECT over {object}")
        try:
            relation = self.con.sql(query)
            types = [str(t) for t in relation.types]
        except duckdb.Error as exc:
            raise self._fail(rule, f"DuckDB rejects the query: {str(exc).splitlines()[0][:200]}",
                             "the query runs in DuckDB over the staged rows, table {object}") from None
        if len(types) != 1 or not types[0].upper().startswith(_NUMERIC_TYPES):
            raise self._fail(rule, f"the query returns {len(types)} column(s) of type {', '.join(types)}",
                             "return one number or boolean, e.g. SELECT count(*) FROM {object} WHERE …")
        self._queries[rule.name] = query

    def _aggregate_sql(self, rules: Sequence[Rule]) -> str:
        parts = ["count(*)"]
        for rule in rules:
            predicate = _count_predicate(rule, self.schema)
            parts.append("count(*)" if predicate is None else f"count(*) FILTER (WHERE {predicate})")
        return f"SELECT {', '.join(parts)} FROM {_BATCH}"

    @property
    def active(self) -> list[Rule]:
        """The rules that are measured (not ``text``/``custom``)."""
        return [r for r in self.rules if r.skipped is None]

    # -- rows ------------------------------------------------------------------------------------------
    def add(self, data: pa.Table | pa.RecordBatch) -> None:
        """Measure one batch of staged rows (columns as in ``schema``)."""
        if data.num_rows == 0:
            return
        self.rows += data.num_rows
        self.con.register(_BATCH, data)
        try:
            per_batch = [r for r in self.active if r.per_batch and r.name not in self._errors]
            try:
                counts = self.con.execute(self._aggregate_sql(per_batch)).fetchall()[0]
                for rule, n in zip(per_batch, counts[1:], strict=True):
                    self._counts[rule.name] = self._counts.get(rule.name, 0) + int(n)
            except duckdb.Error:
                for rule in per_batch:  # find the rule that breaks on these rows; the others go on
                    self._measure_alone(rule)
            for columns, table in self._dup_tables.items():
                cols = ", ".join(quote_ident(c) for c in columns)
                not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)
                self.con.execute(f"INSERT INTO {table} SELECT {cols} FROM {_BATCH} WHERE {not_null}")
            if self._queries:
                self.con.execute(f"INSERT INTO {quote_ident(self.object_name)} BY NAME SELECT * FROM {_BATCH}")
        finally:
            self.con.unregister(_BATCH)

    def _measure_alone(self, rule: Rule) -> None:
        try:
            row = self.con.execute(self._aggregate_sql([rule])).fetchall()[0]
            self._counts[rule.name] = self._counts.get(rule.name, 0) + int(row[1])
        except duckdb.Error as exc:  # the message may quote a value: keep only its kind
            self._errors[rule.name] = f"could not be measured on the staged rows ({type(exc).__name__})"

    # -- results ---------------------------------------------------------------------------------------
    def _observe(self, rule: Rule) -> int | float | bool | None:
        if rule.name in self._errors:
            return None
        if rule.kind == "sql":
            try:
                rows = self.con.execute(f"SELECT * FROM ({self._queries[rule.name]}) LIMIT 2").fetchall()
            except duckdb.Error as exc:
                self._errors[rule.name] = f"the query failed on the staged rows ({type(exc).__name__})"
                return None
            if len(rows) != 1:
                self._errors[rule.name] = f"the query returned {'no row' if not rows else 'several rows'}, not one"
                return None
            try:
                return _scalar(rows[0][0])
            except TypeError as exc:
                self._errors[rule.name] = f"the query returned a {exc}, not a number or boolean"
                return None
        if rule.metric == "duplicateValues":
            table = self._dup_tables[rule.columns]
            cols = ", ".join(quote_ident(c) for c in rule.columns)
            count = int(self.con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {cols} "
                                         f"HAVING count(*) > 1)").fetchall()[0][0])
        elif rule.metric == "rowCount":
            return self.rows
        else:
            count = self._counts.get(rule.name, 0)
        if rule.unit == "percent":
            return round(100.0 * count / self.rows, 6) if self.rows else 0.0
        return count

    def results(self) -> list[RuleResult]:
        """One result per rule, in the rules' order (skipped rules too, with ``passed`` None)."""
        out = []
        for rule in self.rules:
            if rule.skipped is not None:
                out.append(RuleResult(rule.name, rule.level, rule.kind, rule.metric, rule.prop, None, None, None,
                                      rule.unit, rule.severity, skipped=rule.skipped))
                continue
            observed = self._observe(rule)
            assert rule.threshold is not None  # library and sql rules have one operator (model validation)
            out.append(RuleResult(rule.name, rule.level, rule.kind, rule.metric, rule.prop, observed,
                                  rule.threshold.describe(), rule.threshold.passes(observed), rule.unit,
                                  rule.severity, error=self._errors.get(rule.name)))
        return out

    def close(self) -> None:
        """Release the DuckDB database (and its spill files)."""
        self.con.close()

    def __enter__(self) -> QualityEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_rules(asset: AssetDefinition, source: str | Path | None = None) -> None:
    """Refuse (one-line ``ConfigError``) any rule of ``asset`` DuckDB cannot run, before a row is read: for ``check``.

    The rules are bound against the asset's own columns, typed as the stage stores them.
    """
    schema = pa.schema([(f.name, parse_type(f.type).arrow) for f in asset.fields])
    QualityEvaluator.for_asset(asset, schema, source=source).close()


def evaluate(asset: AssetDefinition, batches: Iterable[pa.Table | pa.RecordBatch], schema: pa.Schema, *,
             source: str | Path | None = None, spill_dir: str | Path | None = None) -> list[RuleResult]:
    """Every quality rule of ``asset`` measured over ``batches`` (one pass, bounded memory)."""
    with QualityEvaluator.for_asset(asset, schema, source=source, spill_dir=spill_dir) as evaluator:
        for batch in batches:
            evaluator.add(batch)
        return evaluator.results()


__all__ = ["QualityEvaluator", "RuleResult", "check_rules", "evaluate", "invalid_predicate"]
