"""The stage's Arrow path gives exactly what its DuckDB cast gives, and leaves every check to DuckDB."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa

from dativo_ingest.stage.stage import CursorFilter, Stage, StageField
from dativo_ingest.stage.types import parse_type
from dativo_ingest.stream import Batch

TS = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
FIELDS = [StageField("id", parse_type("long"), required=True), StageField("name", parse_type("string")),
          StageField("amount", parse_type("double")), StageField("n", parse_type("integer")),
          StageField("ok", parse_type("boolean")), StageField("day", parse_type("date")),
          StageField("at", parse_type("timestamptz")), StageField("local", parse_type("timestamp"))]


def _batch(**overrides: pa.Array) -> pa.RecordBatch:
    columns = {
        "id": pa.array([1, 2, 3], pa.int64()), "Name": pa.array(["a", None, "c"], pa.large_string()),
        "amount": pa.array([1, 2**53 + 1, None], pa.int64()), "n": pa.array([7, None, 9], pa.int32()),
        "ok": pa.array([True, False, None]), "day": pa.array([date(2024, 1, 1), None, date(9999, 12, 31)]),
        "at": pa.array([datetime(2024, 1, 1, 10, tzinfo=timezone.utc), None, datetime(1, 1, 1, tzinfo=timezone.utc)],
                       pa.timestamp("ms", tz="+05:00")),
        "local": pa.array([datetime(2024, 1, 1, 10), datetime(2024, 1, 2), None], pa.timestamp("s")),
    }
    columns.update(overrides)
    return pa.RecordBatch.from_pydict(columns)


def _stage(**kwargs: object) -> Stage:
    return Stage(FIELDS, run_id="run-1", ingest_ts=TS, add_ingest_date=True, **kwargs)  # type: ignore[arg-type]


def _both(batch: pa.RecordBatch, **kwargs: object) -> tuple[pa.Table | None, pa.Table]:
    stage = _stage(**kwargs)
    try:
        fast = stage._exact(batch, "test", filter_cursor=True)
        slow = stage._cast(batch, "test", 0, filter_cursor=True)
    finally:
        stage.close()
    return fast, slow


def test_typed_columns_take_the_arrow_path_with_the_duckdb_result() -> None:
    fast, slow = _both(_batch())
    assert fast is not None
    assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist()


def test_columns_to_convert_go_through_duckdb_alone_with_the_same_result() -> None:
    cases = {
        "text to convert": {"amount": pa.array(["1.5", "2", None])},
        "nanoseconds": {"local": pa.array([1, 2, 3], pa.timestamp("ns"))},
        "a uint64": {"n": pa.array([1, 2, 3], pa.uint64())},
        "text date-times": {"at": pa.array(["2024-01-01T10:00:00+05:00", None, "2024-02-01"]),
                            "local": pa.array(["2024-01-01 10:00:00", "2024-01-02", None])},
    }
    for what, columns in cases.items():
        fast, slow = _both(_batch(**columns))
        assert fast is not None, what
        assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist(), what


def test_a_row_that_may_violate_the_contract_takes_the_whole_duckdb_path() -> None:
    cases = {
        "a required value missing": {"id": pa.array([1, None, 3], pa.int64())},
        "text that is no number": {"amount": pa.array(["1.5", "x", None])},
        "a year past 9999": {"at": pa.array([0, 1, 253402300800], pa.timestamp("s", tz="UTC"))},
    }
    for what, columns in cases.items():
        assert _both(_batch(**columns))[0] is None, what
    missing = _batch().to_pydict()
    del missing["local"]
    assert _both(pa.RecordBatch.from_pydict(missing))[0] is None  # only a field the batch lacks: nothing to gain


def test_a_cursor_filter_takes_the_duckdb_path_and_a_masked_field_is_masked_alike() -> None:
    stage = _stage(cursor=CursorFilter("id", "1"))
    assert stage._exact(_batch(), "test", filter_cursor=True) is None
    assert stage._exact(_batch(), "test", filter_cursor=False) is not None  # the source filtered already
    stage.close()
    masked = Stage([*FIELDS[:1], StageField("name", parse_type("string"), protect="mask"), *FIELDS[2:]], run_id="r",
                   ingest_ts=TS)
    fast = masked._exact(_batch(), "test", filter_cursor=True)
    slow = masked._cast(_batch(), "test", 0, filter_cursor=True)
    masked.close()
    assert fast is not None and fast.to_pylist() == slow.to_pylist()
    assert fast.column("name").to_pylist()[1] is None and fast.column("name").to_pylist()[0] != "a"


def test_add_counts_and_buffers_rows_of_the_arrow_path() -> None:
    stage = _stage(chunk_rows=2)
    chunks = stage.add(Batch("s", _batch()))
    assert [c.num_rows for c in chunks] == [3] and stage.stats.rows_clean == 3 and not stage.stats.rows_quarantined
    stage.close()
