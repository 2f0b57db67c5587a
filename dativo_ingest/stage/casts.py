"""How a raw value becomes a value of the asset's type, and when that would change it: one specification.

``cast_sql`` gives, for one column, the DuckDB expression of the typed value (NULL when the value does not
cast) and the condition under which the cast **changes** the value instead of carrying it over. Strict mode
stores a value only when it fits its type exactly; a changed value is a violation like a value that does
not cast (warn mode quarantines it with its reason). The rules:

| target | not a value of the type (NULL) | changed (a violation too) |
|---|---|---|
| integer/long | not a number, out of range | a fraction (``1.5``): integers are not rounded |
| float (32-bit) | not a number | overflows to infinity (``1e39``) |
| double | not a number | text that overflows to infinity (``1e400``; ``inf`` itself is kept) |
| decimal(p,s) | not a number, too many integer digits | more fractional digits than ``s`` (``1.005``, decimal(5,2)) |
| boolean | not true/false/yes/no/1/0 | a number other than 0 and 1 |
| date | not a date | a time of day other than midnight is dropped; a year outside 1–9999 |
| timestamp (no zone) | not a date-time | a year outside 1–9999 |
| timestamptz | not a date-time | a year outside 1–9999 |
| time | not a time | a UTC offset, which a time of day cannot keep |

Text with a UTC offset into ``timestamp`` (no zone) is **converted to UTC** (``2024-01-01T10:00:00+05:00`` is
stored as ``05:00``), the same convention as cursors (``state/cursor.py``): a zoneless timestamp is UTC. Text
without an offset into ``timestamptz`` is read as UTC. Sub-microsecond digits are truncated (Iceberg keeps µs).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from dativo_ingest.stage.types import LogicalType

_TIME_OFFSET = r"'(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$'"


@dataclass(frozen=True)
class CastSql:
    """The typed value of a raw column, and when the cast would change it (None: it never does)."""

    value: str
    changed: str | None = None


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _year_out_of_range(value: str) -> str:
    return f"(year({value}) > 9999 OR year({value}) < 1)"


def cast_sql(raw: str, raw_type: pa.DataType, logical: LogicalType) -> CastSql:
    """DuckDB SQL casting the column expression ``raw`` (Arrow type ``raw_type``) to ``logical``."""
    duck = logical.duckdb
    if duck == "VARCHAR":
        return CastSql(raw if _is_text(raw_type) else f"CAST({raw} AS VARCHAR)")
    if duck == "JSON":
        text = raw if _is_text(raw_type) else f"CAST({raw} AS VARCHAR)"
        return CastSql(f"CASE WHEN json_valid({text}) THEN {text} END")
    if duck == "TIMESTAMP" and _is_text(raw_type):
        value = f"TRY_CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP)"
    else:
        value = f"TRY_CAST({raw} AS {duck})"
    return CastSql(value, _changed(raw, raw_type, duck, logical, value))


def _fraction_beyond(raw: str, value: str, scale: int) -> str:
    """Text with a non-zero digit after the first ``scale`` fractional digits (exponent forms compared as
    doubles). Textual, so no wider DECIMAL is needed: DuckDB refuses comparisons beyond 38 digits."""
    return (f"CASE WHEN regexp_matches({raw}, '[eE]') THEN TRY_CAST({raw} AS DOUBLE) <> CAST({value} AS DOUBLE) "
            f"ELSE regexp_matches(trim({raw}), '\\.[0-9]{{{scale}}}[0-9]*[1-9]') END")


def _differs_from_decimal(raw: str, raw_type: pa.Decimal128Type, value: str) -> str:
    """``value`` read back in the raw decimal type differs from the raw value (or cannot be read back)."""
    return f"(TRY_CAST({value} AS DECIMAL({raw_type.precision},{raw_type.scale})) IS DISTINCT FROM {raw})"


def _changed(raw: str, raw_type: pa.DataType, duck: str, logical: LogicalType, value: str) -> str | None:
    text, floating = _is_text(raw_type), pa.types.is_floating(raw_type)
    if duck == "BIGINT" or duck.startswith("DECIMAL"):
        scale = logical.arrow.scale if isinstance(logical.arrow, pa.Decimal128Type) else 0
        if text:
            return _fraction_beyond(raw, value, scale)
        if floating:
            return f"(CAST({value} AS DOUBLE) <> {raw})"
        if isinstance(raw_type, pa.Decimal128Type | pa.Decimal256Type) and raw_type.scale > scale:
            return _differs_from_decimal(raw, raw_type, value)
        return None
    if duck == "FLOAT":
        if text or _is_number(raw_type):
            return f"(isinf({value}) AND NOT COALESCE(isinf(TRY_CAST({raw} AS DOUBLE)), false))"
        return None
    if duck == "DOUBLE":
        if text:
            return (f"(isinf({value}) AND NOT regexp_full_match(lower(trim({raw})), "
                    r"'[+-]?inf(inity)?'))")
        return None
    if duck == "BOOLEAN":
        return f"({raw} NOT IN (0, 1))" if _is_number(raw_type) else None
    if duck == "DATE":
        if text:
            # TRY_CAST throughout: a date past the timestamp range (``510000-01-01``) is a violation, not an error
            dropped = f"COALESCE(TRY_CAST({raw} AS TIMESTAMP) <> TRY_CAST({value} AS TIMESTAMP), false)"
        elif pa.types.is_timestamp(raw_type):
            dropped = f"COALESCE(TRY_CAST({raw} AS TIMESTAMP) <> TRY_CAST({value} AS TIMESTAMP), false)"
        else:
            dropped = "false"
        return f"({dropped} OR {_year_out_of_range(value)})"
    if duck in ("TIMESTAMP", "TIMESTAMPTZ"):
        return _year_out_of_range(value)
    if duck == "TIME":
        return f"regexp_matches(trim({raw}), {_TIME_OFFSET})" if text else None
    return None


def parses_as(value: str, logical: LogicalType) -> bool:
    """Whether the text ``value`` is a value of ``logical`` that the cast keeps exactly (a committed cursor, say)."""
    import duckdb

    spec = cast_sql("v", pa.string(), logical)
    changed = spec.changed or "false"
    with duckdb.connect() as con:  # its own: the module's default connection is not for two threads at once
        row = con.execute(f"SELECT {spec.value} IS NOT NULL AND NOT ({changed}) FROM (SELECT $1::VARCHAR AS v)",
                          [value]).fetchone()
    return bool(row and row[0])


__all__ = ["CastSql", "cast_sql", "parses_as"]
