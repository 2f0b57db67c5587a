"""The one JSON Schema → Arrow mapping (``engines.common.schema``), as both JSON-lines engines apply it: the same
records declared the same way become the same Arrow batch through Airbyte and through Singer."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pytest

from dativo_ingest.engines.airbyte.records import record_columns
from dativo_ingest.engines.common.schema import AUTO, DATE, INT, JSON, NUMBER, STRING, TIMESTAMP_TZ, column_kind
from dativo_ingest.engines.singer.reader import RecordsEvent, SingerReader

SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"},
    "born": {"type": ["null", "string"], "format": "date"},
    "seen": {"type": ["null", "string"], "format": "date-time"},
    "score": {"type": ["null", "number"]},
    "ok": {"type": ["null", "boolean"]},
    "tags": {"type": ["null", "array"], "items": {"type": "string"}},
    "address": {"type": ["null", "object"], "properties": {"city": {"type": "string"}}},
    "note": {"type": ["null", "string"]}}}
ROWS = [
    {"id": 1, "born": "1990-05-01", "seen": "2024-01-01T10:00:00+02:00", "score": 1.5, "ok": True, "tags": ["a"],
     "address": {"city": "Oslo"}, "note": "x"},
    {"id": 2, "born": "2000-02-29", "seen": "2024-01-01T00:00:00Z", "score": 2, "ok": False, "tags": [],
     "address": None, "note": None},
    {"id": 3, "born": None, "seen": "2024-01-01T03:00:00", "score": None, "ok": None, "tags": None,
     "address": None, "note": "z"},
]
UTC = dt.timezone.utc


def _airbyte(rows: list[dict], schema: dict = SCHEMA) -> pa.RecordBatch:
    lines = [orjson.dumps({"type": "RECORD", "record": {"stream": "s", "data": r, "emitted_at": 0}}) + b"\n"
             for r in rows]
    return record_columns(schema).from_lines(lines, len(lines))


def _singer(rows: list[dict], schema: dict = SCHEMA) -> pa.RecordBatch:
    lines = [orjson.dumps({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]})]
    lines += [orjson.dumps({"type": "RECORD", "stream": "s", "record": r}) for r in rows]
    (event,) = [e for e in SingerReader().read(lines) if isinstance(e, RecordsEvent)]
    return event.batch


@pytest.mark.parametrize("read", [_airbyte, _singer], ids=["airbyte", "singer"])
def test_dates_are_date32_and_date_times_utc_timestamps_in_both_engines(read):
    batch = read(ROWS)
    assert batch.schema.field("born").type == pa.date32()
    assert batch.column("born").to_pylist() == [dt.date(1990, 5, 1), dt.date(2000, 2, 29), None]
    assert batch.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert batch.column("seen").to_pylist() == [dt.datetime(2024, 1, 1, 8, tzinfo=UTC),  # +02:00 → UTC
                                                dt.datetime(2024, 1, 1, 0, tzinfo=UTC),
                                                dt.datetime(2024, 1, 1, 3, tzinfo=UTC)]  # no offset: UTC


@pytest.mark.parametrize("read", [_airbyte, _singer], ids=["airbyte", "singer"])
def test_numbers_booleans_and_nested_values_in_both_engines(read):
    batch = read(ROWS)
    types = {f.name: f.type for f in batch.schema}
    assert types["id"] == pa.int64() and types["score"] == pa.float64() and types["ok"] == pa.bool_()
    assert types["tags"] == types["address"] == types["note"] == pa.string()
    assert batch.column("tags").to_pylist() == ['["a"]', "[]", None]  # JSON text
    assert orjson.loads(batch.column("address").to_pylist()[0]) == {"city": "Oslo"}


def test_both_engines_make_the_same_batch_of_the_same_records():
    assert _airbyte(ROWS).equals(_singer(ROWS))
    odd = [{**ROWS[0], "born": "not a date", "id": "x"}, ROWS[1]]  # values that do not fit: text, in both
    assert _airbyte(odd).equals(_singer(odd))
    assert _airbyte(odd).column("born").to_pylist() == ["not a date", "2000-02-29"]
    assert _airbyte(odd).column("id").to_pylist() == ["x", "2"]


@pytest.mark.parametrize("read", [_airbyte, _singer], ids=["airbyte", "singer"])
def test_a_number_column_is_int64_when_every_value_is_whole_and_big_integers_stay_exact(read):
    assert read([{"id": 1, "score": 10}, {"id": 2, "score": 20.0}]).column("score").type == pa.int64()
    assert read([{"id": 1, "score": 10}, {"id": 2, "score": 0.5}]).column("score").to_pylist() == [10.0, 0.5]
    big = 2 ** 53 + 1  # a double cannot hold it: the batch is read exactly instead
    assert read([{"id": 1, "score": big}, {"id": 2, "score": None}]).column("score").to_pylist() == [big, None]


@pytest.mark.parametrize(("prop", "kind"), [
    ({"type": "string", "format": "date"}, DATE),
    ({"type": ["string", "null"], "format": "date-time"}, TIMESTAMP_TZ),
    ({"type": "string", "airbyte_type": "timestamp_with_timezone"}, TIMESTAMP_TZ),
    ({"type": "number", "airbyte_type": "integer"}, INT),
    ({"type": ["integer", "number"]}, NUMBER),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, STRING),
    ({"type": ["string", "object"]}, JSON),
    ({"properties": {"a": {}}}, JSON),
    ({"type": ["string", "integer"]}, AUTO),
    ({}, AUTO),
])
def test_column_kinds(prop, kind):
    assert column_kind(prop) == kind
