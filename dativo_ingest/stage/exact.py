"""The stage's Arrow path: a batch whose every column already holds the asset's type (or one that widens into it
exactly) needs no DuckDB query — the cast would carry each value over unchanged and find no violation.

``exact_column`` answers for one column: the column as the asset's type (converted where the storage type differs
only in width or unit), or None, and the stage casts that column in DuckDB. The rules are those of
``stage.casts`` where they change nothing:

| asset type           | batch column                                   | checked here                       |
|----------------------|------------------------------------------------|------------------------------------|
| string               | string, large_string                           | —                                  |
| integer/long         | int8…int64, uint8…uint32                       | —                                  |
| double               | float32/64, int8…int64, uint8…uint32 (rounded as DuckDB rounds) | —                 |
| boolean              | bool                                           | —                                  |
| date                 | date32                                         | year 1–9999                        |
| timestamp, timestamptz | timestamp in s, ms or µs (any zone or none)  | year 1–9999                        |

Text columns (a CSV's, say) are parsed by Arrow where its parser and DuckDB's cast provably agree; a column with
one value outside that common ground goes to DuckDB whole. The common ground (nulls stay null):

- integer/long: ``[+-]?digits`` in the int64 range (Arrow refuses a ``+``, blanks, ``1.0``, ``1e3``);
- double: decimal and exponent forms, ``nan``, ``inf``; an infinite result goes to DuckDB, which tells ``inf``
  from an overflow (``1e400``);
- boolean: ``true`` / ``false`` / ``1`` / ``0`` in any case (``t``, ``yes``: DuckDB);
- decimal(p,s): plain decimal forms (no exponent, at most p digits) with no non-zero digit past the scale;
- date: ``YYYY-MM-DD``;
- timestamp, timestamptz: ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]hh:mm[:ss[.f]]`` with up to 6 fraction digits and no
  offset, read as UTC (an offset, ``hh`` alone, sub-µs digits: DuckDB).

Anything else (decimals, JSON, 32-bit floats, nanoseconds, a policy's mask or hash, a field the batch lacks) is
cast by DuckDB. ``tests/unit/test_stage_text_parse.py`` holds both to the same answer on a corpus of edge cases.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

#: the smallest and largest values a date-time of years 1–9999 has, in µs since the epoch (UTC)
_MIN_US = int((datetime(1, 1, 1, tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()
              ) * 1_000_000
_MAX_US = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
               - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * 1_000_000 + 999_999
_MIN_DAY = (date(1, 1, 1) - date(1970, 1, 1)).days
_MAX_DAY = (date(9999, 12, 31) - date(1970, 1, 1)).days
_SMALL_INTS = (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32())


def _within(array: pa.Array, low: int, high: int, storage: pa.DataType) -> bool:
    if array.null_count == len(array):
        return True
    bounds = pc.min_max(array.cast(storage))
    return low <= bounds["min"].as_py() and bounds["max"].as_py() <= high


#: the lengths a date-time text may have on the Arrow path: a date, then hh:mm, hh:mm:ss, and 1–6 fraction digits
#: (Arrow also reads ``YYYY-MM-DD hh``, which DuckDB refuses, and offsets, which it reads differently)
_DATETIME_LENGTHS = pa.array([10, 16, 19, 21, 22, 23, 24, 25, 26], pa.int32())


def _parse_text(array: pa.Array, duckdb_type: str, target: pa.DataType) -> pa.Array | None:
    """A text column parsed by Arrow, when every value is in the common ground of Arrow's parser and DuckDB's cast
    (the table in the module docstring); else None."""
    if array.null_count == len(array):
        return None  # nothing to gain: DuckDB casts an all-null column in no time
    if duckdb_type in ("DATE", "TIMESTAMP", "TIMESTAMPTZ"):
        lengths = pc.utf8_length(array.drop_null())
        if duckdb_type == "DATE":
            bounds = pc.min_max(lengths)
            if bounds["min"].as_py() != 10 or bounds["max"].as_py() != 10:
                return None
        elif not pc.all(pc.is_in(lengths, value_set=_DATETIME_LENGTHS)).as_py():
            return None
    if duckdb_type == "BOOLEAN" and not pc.all(pc.utf8_is_alnum(array), skip_nulls=True).as_py():
        return None
    parse_as = {"BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
                "TIMESTAMP": pa.timestamp("us"), "TIMESTAMPTZ": pa.timestamp("us")}.get(duckdb_type)
    if duckdb_type.startswith("DECIMAL") and pa.types.is_decimal(target):
        # Arrow rounds a tiny exponent (1e-95) to 0, and wraps a value whose digits rescaled pass 38: plain text
        # short enough that neither can happen, only
        if (pc.max(pc.utf8_length(array)).as_py() > min(target.precision + 2, 38 - target.scale)
                or pc.any(pc.match_substring(array, "e", ignore_case=True)).as_py()):
            return None
        parse_as = target  # Arrow refuses what would lose digits or overflow: DuckDB then names it
    if parse_as is None:
        return None
    try:
        parsed = pc.cast(array, parse_as)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if duckdb_type == "DOUBLE" and pc.any(pc.is_inf(parsed)).as_py():
        return None  # ``inf`` is kept, ``1e400`` is a value that does not fit: DuckDB tells them apart
    if duckdb_type in ("TIMESTAMP", "TIMESTAMPTZ") and not _within(parsed, _MIN_US, _MAX_US, pa.int64()):
        return None
    if duckdb_type == "DATE" and not _within(parsed, _MIN_DAY, _MAX_DAY, pa.int32()):
        return None
    return parsed if parsed.type == target else parsed.cast(target)  # zoneless text is UTC, as the stage reads it


def exact_column(array: pa.Array, duckdb_type: str, target: pa.DataType) -> pa.Array | None:
    """``array`` as a column of ``target`` when the DuckDB cast to ``duckdb_type`` would carry every value over
    unchanged and flag none; else None."""
    t = array.type
    if duckdb_type != "VARCHAR" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _parse_text(array, duckdb_type, target)
    if duckdb_type == "VARCHAR":
        if pa.types.is_string(t):
            return array
        return array.cast(pa.string()) if pa.types.is_large_string(t) else None
    if duckdb_type == "BIGINT":
        return (array if t == pa.int64() else array.cast(pa.int64())) if t in _SMALL_INTS else None
    if duckdb_type == "DOUBLE":
        if t == pa.float64():
            return array
        if t == pa.float32() or t in _SMALL_INTS:
            return array.cast(pa.float64(), safe=False)  # int64 → nearest double, as DuckDB's CAST rounds
        return None
    if duckdb_type == "BOOLEAN":
        return array if pa.types.is_boolean(t) else None
    if duckdb_type == "DATE":
        if t == pa.date32() and _within(array, _MIN_DAY, _MAX_DAY, pa.int32()):
            return array
        return None
    if duckdb_type in ("TIMESTAMP", "TIMESTAMPTZ"):
        if not pa.types.is_timestamp(t) or t.unit not in ("s", "ms", "us"):
            return None
        micros = array.cast(pa.timestamp("us", tz=t.tz))  # s and ms widen exactly
        if not _within(micros, _MIN_US, _MAX_US, pa.int64()):
            return None
        return micros.cast(target)  # the same instant (a zoneless value is read as UTC, as the stage does)
    return None


__all__ = ["exact_column"]
