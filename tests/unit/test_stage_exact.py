"""Issue #12 class 5 and 6: strict stores a value only if it fits its type exactly; a key is never null."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from dativo_ingest.stage.stage import Stage, StageField
from dativo_ingest.stage.types import parse_type
from dativo_ingest.stream import Batch

TS = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _stage(kind: str, **kw: object) -> Stage:
    return Stage([StageField("id", parse_type("long")), StageField("v", parse_type(kind))], run_id="r",
                 ingest_ts=TS, **kw)  # type: ignore[arg-type]


def _run(kind: str, values: list, arrow_type: pa.DataType = pa.string()) -> tuple[list, list[str]]:
    stage = _stage(kind)
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": pa.array(range(len(values)), pa.int64()),
                                                     "v": pa.array(values, arrow_type)})))
    clean = [c for chunk in stage.drain() for c in chunk.column("v").to_pylist()]
    quarantine = stage.take_quarantine()
    reasons = quarantine.column("_dativo_reason").to_pylist() if quarantine is not None else []
    return clean, reasons


@pytest.mark.parametrize(("kind", "value", "arrow_type"), [
    ("integer", "1.5", pa.string()), ("integer", 1.5, pa.float64()), ("integer", "2.0000001", pa.string()),
    ("long", Decimal("3.25"), pa.decimal128(10, 2)),
    ("float", "1e39", pa.string()), ("double", "1e400", pa.string()),
    ("decimal(5,2)", "1.005", pa.string()), ("decimal(5,2)", 1.005, pa.float64()),
    ("decimal(5,2)", Decimal("1.005"), pa.decimal128(10, 3)),
    ("boolean", 2, pa.int64()),
    ("date", "2024-01-01 10:00", pa.string()), ("date", "10000-01-01", pa.string()),
    ("date", "510000-01-01", pa.string()),  # past the timestamp range: once an error that failed the run
    ("timestamp", "10000-01-01 00:00:00", pa.string()), ("timestamptz", "12024-01-01T00:00:00Z", pa.string()),
    ("time", "12:00:00+02:00", pa.string()),
])
def test_values_that_would_change_are_violations(kind: str, value: object, arrow_type: pa.DataType) -> None:
    clean, reasons = _run(kind, [value], arrow_type)
    assert clean == [] and len(reasons) == 1, (clean, reasons)
    assert f"does not fit {parse_type(kind).name} exactly" in reasons[0] or "is not a" in reasons[0]


@pytest.mark.parametrize(("kind", "value", "arrow_type", "stored"), [
    ("integer", "3.0", pa.string(), 3), ("integer", "1e2", pa.string(), 100), ("integer", 4.0, pa.float64(), 4),
    ("integer", " 12 ", pa.string(), 12), ("decimal(5,2)", "1.50", pa.string(), Decimal("1.50")),
    ("decimal(5,2)", "1.000", pa.string(), Decimal("1.00")), ("decimal(5,2)", 0.1, pa.float64(), Decimal("0.10")),
    ("double", "inf", pa.string(), float("inf")), ("float", "1.5", pa.string(), 1.5),
    ("boolean", 1, pa.int64(), True), ("boolean", "yes", pa.string(), True),
    ("date", "2024-01-01", pa.string(), date(2024, 1, 1)), ("date", "2024-01-01 00:00:00", pa.string(),
                                                            date(2024, 1, 1)),
    ("timestamp", "2024-01-01T10:00:00+05:00", pa.string(), datetime(2024, 1, 1, 5, 0)),  # converted to UTC
    ("timestamp", "2024-01-01T10:00:00", pa.string(), datetime(2024, 1, 1, 10, 0)),
    ("timestamptz", "2024-01-01T10:00:00", pa.string(), datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)),
    ("long", "9223372036854775807", pa.string(), 9223372036854775807),
    ("decimal(38,18)", "12345678901234567890.123456789012345678", pa.string(),
     Decimal("12345678901234567890.123456789012345678")),
    ("decimal(10,2)", Decimal("12.50"), pa.decimal128(38, 18), Decimal("12.50")),
])
def test_values_that_fit_are_stored_unchanged(kind: str, value: object, arrow_type: pa.DataType,
                                              stored: object) -> None:
    clean, reasons = _run(kind, [value], arrow_type)
    assert reasons == [] and clean == [stored]


def test_a_sensitive_value_is_not_copied_into_the_reason() -> None:
    stage = Stage([StageField("v", parse_type("integer"), sensitive=True)], run_id="r", ingest_ts=TS)
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"v": pa.array(["123.5"])})))
    (reason,) = stage.take_quarantine().column("_dativo_reason").to_pylist()
    assert reason == "v: value does not fit integer exactly" and "123.5" not in reason


def test_a_null_primary_key_is_a_violation_even_when_not_declared_required() -> None:
    stage = Stage([StageField("id", parse_type("long")), StageField("v", parse_type("string"))], run_id="r",
                  ingest_ts=TS, primary_key=["id"])
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": pa.array([1, None, 2], pa.int64()),
                                                     "v": pa.array(["a", "b", "c"])})))
    assert [r["id"] for c in stage.drain() for r in c.to_pylist()] == [1, 2]
    assert stage.take_quarantine().column("_dativo_reason").to_pylist() == ["id: required value missing"]
    assert stage.stats.rows_quarantined == 1


def test_streams_writing_one_table_share_one_dedup_store() -> None:
    fields = [StageField("id", parse_type("long"), required=True), StageField("v", parse_type("string"))]
    first = Stage(fields, run_id="r", ingest_ts=TS, primary_key=["id"])
    keyed = first.keyed_store()
    a = Stage(fields, run_id="r", ingest_ts=TS, primary_key=["id"], keyed=keyed)
    b = Stage(fields, run_id="r", ingest_ts=TS, primary_key=["id"], keyed=keyed)
    for stage, tag in ((a, "a"), (b, "b")):
        stage.add(Batch(tag, pa.RecordBatch.from_pydict({"id": pa.array(range(20), pa.int64()),
                                                         "v": pa.array([tag] * 20)})))
    assert keyed.pending_rows == 40 and a.pending_rows == 0 and b.pending_rows == 0
    rows = [r for stage in (a, b) for chunk in stage.drain() for r in chunk.to_pylist()]
    assert len(rows) == 20 and {r["v"] for r in rows} == {"b"}  # each key once, the last stream's row wins
    assert a.stats.rows_deduplicated + b.stats.rows_deduplicated == 20
    for stage in (first, a, b):
        stage.close()
    keyed.close()
