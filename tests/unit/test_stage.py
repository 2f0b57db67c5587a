from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from dativo_ingest.stage.stage import CursorFilter, Stage, StageField
from dativo_ingest.stage.types import parse_type
from dativo_ingest.stream import Batch, Rejected

TS = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _fields():
    return [
        StageField("id", parse_type("integer"), required=True),
        StageField("name", parse_type("string"), required=True, sensitive=True),
        StageField("amount", parse_type("decimal(10,2)")),
        StageField("ok", parse_type("boolean")),
        StageField("day", parse_type("date")),
        StageField("at", parse_type("timestamp")),
        StageField("at_tz", parse_type("timestamptz")),
        StageField("doc", parse_type("json")),
    ]


def _batch(rows: dict) -> Batch:
    data = pa.RecordBatch.from_pydict({k: pa.array(v, pa.string()) for k, v in rows.items()})
    return Batch("s", data, origin="f.csv")


def test_casts_every_type_and_adds_system_columns():
    stage = Stage(_fields(), run_id="r1", ingest_ts=TS, add_ingest_date=True)
    chunks = stage.add(_batch({
        "id": ["1"], "name": ["a"], "amount": ["12.350"], "ok": ["true"], "day": ["2024-02-29"],
        "at": ["2004-02-08 10:01:36.827"], "at_tz": ["2024-01-01 10:00:00+02:00"], "doc": ['{"k": [1, 2]}'],
    }))
    assert chunks == []
    (table,) = list(stage.drain())
    row = table.to_pylist()[0]
    assert row["id"] == 1 and row["amount"] == Decimal("12.35") and row["ok"] is True
    assert str(row["day"]) == "2024-02-29"
    assert row["at"] == datetime(2004, 2, 8, 10, 1, 36, 827000)
    assert row["at_tz"] == datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)
    assert row["doc"] == '{"k": [1, 2]}'
    assert row["_dativo_run_id"] == "r1" and str(row["ingest_date"]) == "2026-11-26"
    assert table.schema.field("at_tz").type == pa.timestamp("us", tz="UTC")


def test_violations_are_split_with_reasons_and_classified_values_hidden():
    stage = Stage(_fields(), run_id="r1", ingest_ts=TS)
    stage.add(_batch({"id": ["1", "x", None], "name": ["a", "b", "c"], "amount": ["1", "2", "3"],
                      "ok": ["true", "false", "maybe"], "day": [None, None, None], "at": [None, None, None],
                      "at_tz": [None, None, None], "doc": ["{}", "{}", "{bad"]}))
    (clean,) = list(stage.drain())
    assert clean.column("id").to_pylist() == [1]
    q = stage.take_quarantine()
    assert q.num_rows == 2
    reasons = q.column("_dativo_reason").to_pylist()
    assert "id: value 'x' is not a integer" in reasons[0]
    assert "id: required value missing" in reasons[1] and "ok: value 'maybe' is not a boolean" in reasons[1]
    assert "doc: value '{bad' is not a json" in reasons[1]
    assert q.column("_dativo_row").to_pylist() == [2, 3]
    assert q.column("id").to_pylist() == ["x", None]  # raw values are kept
    assert stage.stats.rows_quarantined == 2


def test_sensitive_values_never_appear_in_reasons():
    fields = [StageField("ssn", parse_type("integer"), sensitive=True)]
    stage = Stage(fields, run_id="r", ingest_ts=TS)
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"ssn": pa.array(["123-45-6789"])})))
    reason = stage.take_quarantine().column("_dativo_reason")[0].as_py()
    assert "123-45-6789" not in reason and "ssn: value is not a integer" in reason


def test_primary_key_dedup_last_row_wins_across_batches():
    fields = [StageField("id", parse_type("long"), required=True), StageField("v", parse_type("string"))]
    stage = Stage(fields, run_id="r", ingest_ts=TS, primary_key=["id"])
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": ["1", "2", "1"], "v": ["a", "b", "c"]})))
    stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": ["2", "3"], "v": ["B", "d"]})))
    rows = sorted(pa.concat_tables(stage.drain()).select(["id", "v"]).to_pylist(), key=lambda r: r["id"])
    assert rows == [{"id": 1, "v": "c"}, {"id": 2, "v": "B"}, {"id": 3, "v": "d"}]
    assert stage.stats.rows_deduplicated == 2
    assert list(stage.drain()) == []  # drained


def test_cursor_filter_keeps_rows_after_the_committed_cursor_with_lookback():
    fields = [StageField("id", parse_type("long")), StageField("at", parse_type("timestamp"))]
    stage = Stage(fields, run_id="r", ingest_ts=TS, cursor=CursorFilter("at", "2024-01-02T00:00:00", 3600))
    stage.add(Batch("s", pa.RecordBatch.from_pydict({
        "id": ["1", "2", "3", "4"],
        "at": ["2024-01-01 12:00:00", "2024-01-01 23:30:00", "2024-01-02 00:00:01", "2024-01-03 00:00:00"]})))
    (table,) = list(stage.drain())
    assert table.column("id").to_pylist() == [2, 3, 4]
    assert stage.stats.rows_skipped_by_cursor == 1
    assert stage.max_cursor == datetime(2024, 1, 3)


def test_chunks_are_emitted_when_the_buffer_fills():
    fields = [StageField("id", parse_type("long"))]
    stage = Stage(fields, run_id="r", ingest_ts=TS, chunk_rows=3)
    assert stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": ["1", "2"]}))) == []
    chunks = stage.add(Batch("s", pa.RecordBatch.from_pydict({"id": ["3", "4"]})))
    assert [c.num_rows for c in chunks] == [4]


def test_rejected_records_go_to_quarantine_with_raw_text():
    stage = Stage([StageField("id", parse_type("long"))], run_id="r", ingest_ts=TS)
    stage.reject(Rejected("s", "f.csv", 6, "expected 25 fields, got 26", "5,HL Mountain"))
    q = stage.take_quarantine()
    assert q.to_pylist()[0]["_dativo_raw"] == "5,HL Mountain"
    assert q.to_pylist()[0]["_dativo_row"] == 6


@pytest.mark.parametrize("text", ["decimal(40,2)", "varchar", "decimal(5,6)"])
def test_bad_types_are_refused(text):
    with pytest.raises(ValueError):
        parse_type(text)


def test_a_violating_row_with_bytes_that_are_not_utf8_is_quarantined_with_the_bytes_as_hex():
    fields = [StageField("id", parse_type("long")), StageField("blob", parse_type("binary"))]
    stage = Stage(fields, run_id="r", ingest_ts=TS)
    data = pa.RecordBatch.from_pydict({"id": pa.array(["1", "x"]), "blob": pa.array([b"ok", b"\xff\xfe\x00"])})
    stage.add(Batch("s", data, origin="t"))  # raised ArrowInvalid: Invalid UTF8 payload
    (clean,) = list(stage.drain())
    assert clean.column("blob").to_pylist() == [b"ok"]
    q = stage.take_quarantine()
    assert q.column("id").to_pylist() == ["x"] and q.column("blob").to_pylist() == ["\\xfffe00"]


def test_a_batch_whose_source_applied_the_cursor_keeps_every_row_when_only_some_columns_need_a_cast():
    # the source filtered by the cursor (with its lookback): the stage must not filter again, whether the batch
    # takes the Arrow path for some columns and DuckDB for the cursor's, or DuckDB for all
    fields = [StageField("id", parse_type("long")), StageField("day", parse_type("date"))]
    stage = Stage(fields, run_id="r", ingest_ts=TS, cursor=CursorFilter("day", "2024-01-05", 0))
    data = pa.RecordBatch.from_pydict({"id": pa.array([1, 2], pa.int64()),
                                       "day": pa.array(["2024-01-04", "2024-01-06"])})
    stage.add(Batch("s", data, origin="t", cursor_applied=True))  # raised: all columns must have equal length
    (clean,) = list(stage.drain())
    assert clean.column("id").to_pylist() == [1, 2]
