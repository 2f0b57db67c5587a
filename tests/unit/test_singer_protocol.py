"""The Singer wire format: messages → Arrow batches and events; catalogs → selection."""

from __future__ import annotations

import gzip

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dativo_ingest.engines.singer.catalog import (
    Selection,
    apply_metadata_rules,
    apply_select_rules,
    select_streams,
    selected_stream_ids,
    stream_metadata,
)
from dativo_ingest.engines.singer.protocol import SingerProtocolError
from dativo_ingest.engines.singer.reader import (
    ActivateVersionEvent,
    RecordsEvent,
    SchemaEvent,
    SingerReader,
    StateEvent,
)
from dativo_ingest.engines.singer.records import StreamSchema

SCHEMA = {"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "bookmark_properties": ["ts"], "schema": {
    "properties": {"id": {"type": ["integer"]}, "amount": {"type": ["number", "null"]},
                   "ok": {"type": ["boolean", "null"]}, "ts": {"type": ["string", "null"], "format": "date-time"},
                   "payload": {"type": ["string", "object", "array", "null"]},
                   "tags": {"type": "array", "items": {"type": "string"}}, "name": {"type": "string"}}}}


def lines(*messages: dict) -> list[bytes]:
    return [orjson.dumps(m) for m in messages]


def record(**values) -> dict:
    return {"type": "RECORD", "stream": "s", "record": values}


def test_schema_becomes_an_arrow_schema_with_keys_and_bookmarks():
    schema = StreamSchema.from_message(SCHEMA)
    arrow = schema.arrow_schema
    # date-time: a UTC timestamp, as in every engine (the one JSON Schema → Arrow mapping)
    assert [str(t) for t in arrow.types] == ["int64", "double", "bool", "timestamp[us, tz=UTC]", "string", "string",
                                             "string"]
    assert arrow.field("ts").metadata == {b"singer.format": b"date-time"}
    assert arrow.field("payload").metadata == {b"singer.json": b"true"}
    assert schema.key_properties == ["id"] and schema.bookmark_properties == ["ts"]


def test_records_are_batched_and_flushed_before_each_state():
    reader = SingerReader(batch_rows=2)
    events = list(reader.read(lines(
        SCHEMA, record(id=1, amount=1.5, payload={"a": [1]}, tags=["x"]), record(id=2, ok=True),
        record(id=3, payload="text"), {"type": "STATE", "value": {"bookmarks": {"s": {"replication_key_value": 3}}}},
        record(id=4), {"type": "ACTIVATE_VERSION", "stream": "s", "version": 9}, record(id=5))))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SchemaEvent", "RecordsEvent", "RecordsEvent", "StateEvent", "RecordsEvent",
                     "ActivateVersionEvent", "RecordsEvent"]
    first = events[1].batch
    assert first.num_rows == 2 and first.column("id").to_pylist() == [1, 2]
    assert first.column("payload").to_pylist() == ['{"a":[1]}', None]
    assert first.column("tags").to_pylist() == ['["x"]', None] and first.column("ok").to_pylist() == [None, True]
    assert events[2].batch.column("payload").to_pylist() == ['"text"']  # JSON text, like every value of the column
    assert isinstance(events[3], StateEvent) and events[3].line_no == 5
    assert isinstance(events[5], ActivateVersionEvent) and events[5].version == 9
    assert reader.stats.records == {"s": 5} and reader.stats.states == 1


def test_a_value_of_the_wrong_type_keeps_the_batch_as_text_for_the_stage_to_reject():
    events = list(SingerReader().read(lines(SCHEMA, record(id=1), record(id="x"))))
    batch = events[-1].batch
    assert batch.schema.field("id").type == pa.string() and batch.column("id").to_pylist() == ["1", "x"]


def test_only_wanted_columns_are_built_and_unwanted_streams_are_skipped():
    other = {**SCHEMA, "stream": "other"}
    reader = SingerReader(columns=lambda s: ["ID", "name"] if s == "s" else [])
    events = list(reader.read(lines(SCHEMA, other, record(id=1, name="n"),
                                    {"type": "RECORD", "stream": "other", "record": {"id": 2}})))
    batches = [e for e in events if isinstance(e, RecordsEvent)]
    assert len(batches) == 1 and batches[0].batch.schema.names == ["id", "name"]
    assert reader.stats.records == {"s": 1, "other": 1}


@pytest.mark.parametrize(("raw", "message"), [
    ([b'{"type": "RECORD", "stream": "s", "record": {"id": 1}}'], "line 1: RECORD for stream 's' before its SCHEMA"),
    ([orjson.dumps(SCHEMA), b"INFO starting sync"], "line 2: not a JSON message: 'INFO starting sync'"),
    ([b'[1, 2]'], "line 1: not a Singer message"),
    ([b'{"type": "STATE"}'], "line 1: STATE message without a 'value' object"),
    ([orjson.dumps(SCHEMA), b'{"type": "RECORD", "stream": "s"}'], "line 2: RECORD for stream 's' without a 'record'"),
])
def test_protocol_errors_name_the_line(raw, message):
    with pytest.raises(SingerProtocolError) as info:
        list(SingerReader().read(raw))
    assert str(info.value).startswith(message)


def test_batch_messages_read_jsonl_gz_and_parquet_files(tmp_path):
    jl = tmp_path / "a.jsonl.gz"
    with gzip.open(jl, "wb") as fh:
        fh.write(b'{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    pf = tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": [3], "name": ["c"], "extra": [1.0]}), pf)
    events = list(SingerReader().read(lines(
        SCHEMA,
        {"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl", "compression": "gzip"},
         "manifest": [f"file://{jl}"]},
        {"type": "BATCH", "stream": "s", "encoding": {"format": "parquet"}, "manifest": [str(pf)]})))
    ids = [i for e in events if isinstance(e, RecordsEvent) for i in e.batch.column("id").to_pylist()]
    assert ids == [1, 2, 3]
    with pytest.raises(SingerProtocolError, match="only file:// batch storage is read"):
        list(SingerReader().read(lines(SCHEMA, {"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl"},
                                                "manifest": ["s3://bucket/x.jsonl"]})))


def test_unknown_message_types_are_ignored_and_counted():
    reader = SingerReader()
    events = list(reader.read(lines(SCHEMA, {"type": "TRACE", "x": 1})))
    assert [type(e) for e in events] == [SchemaEvent] and reader.stats.ignored_types == {"TRACE": 1}


CATALOG = {"streams": [
    {"tap_stream_id": "public-orders", "stream": "orders", "schema": {"properties": {"id": {}, "v": {}, "ts": {}}},
     "metadata": [{"breadcrumb": [], "metadata": {"inclusion": "available"}}]},
    {"tap_stream_id": "public-users", "schema": {"properties": {"id": {}}}, "metadata": []}]}


def test_selection_writes_stream_and_property_metadata():
    out = select_streams(CATALOG, [Selection("public-orders", ["ID"], "INCREMENTAL", "ts")], legacy_schema_flags=True)
    orders, users = out["streams"]
    top = stream_metadata(orders)
    assert top["selected"] is True and top["replication-method"] == "INCREMENTAL" and top["replication-key"] == "ts"
    props = {m["breadcrumb"][1]: m["metadata"]["selected"] for m in orders["metadata"] if m["breadcrumb"]}
    assert props == {"id": True, "v": False, "ts": True}  # the replication key always travels
    assert orders["schema"]["selected"] is True and orders["schema"]["properties"]["v"]["selected"] is False
    assert stream_metadata(users)["selected"] is False
    assert "selected" not in CATALOG["streams"][0]["metadata"][0]["metadata"]  # the input is not modified


def test_meltano_select_and_metadata_rules():
    out = apply_select_rules(CATALOG, ["public-orders.*", "!public-orders.v", "public-u*.id"])
    assert selected_stream_ids(out) == ["public-orders", "public-users"]
    props = {m["breadcrumb"][1]: m["metadata"]["selected"] for m in out["streams"][0]["metadata"] if m["breadcrumb"]}
    assert props == {"id": True, "v": False, "ts": True}
    out = apply_metadata_rules(out, {"public-o*": {"replication-method": "INCREMENTAL", "replication-key": "ts",
                                                   "v": {"custom": 1}}})
    top = stream_metadata(out["streams"][0])
    assert top["replication-key"] == "ts" and out["streams"][0]["replication_method"] == "INCREMENTAL"
    assert stream_metadata(out["streams"][0], ("properties", "v"))["custom"] == 1


FLAT = {"type": "SCHEMA", "stream": "s", "schema": {"properties": {
    "id": {"type": "integer"}, "x": {"type": ["number", "null"]}, "name": {"type": ["string", "null"]}}}}


def test_the_bulk_path_types_columns_and_keeps_the_order_of_lines_in_another_layout():
    raw = lines(FLAT, record(id=1, x=1, name="a", extra={"deep": [1]}), record(id=2, x=2.5))
    raw.append(b'{"record": {"id": 3, "name": "c"}, "stream": "s", "type": "RECORD"}')  # another key order
    raw += lines(record(id=4), record(id=5, name="e"))
    reader = SingerReader(batch_rows=100)
    batches = [e.batch for e in reader.read(raw) if isinstance(e, RecordsEvent)]
    # one path: the line in another layout is decoded once (to learn its type) and joins its stream's lines
    assert [b.column("id").to_pylist() for b in batches] == [[1, 2, 3, 4, 5]]
    assert batches[0].schema.types == [pa.int64(), pa.float64(), pa.string()]
    assert batches[0].column("x").to_pylist() == [1.0, 2.5, None, None, None]
    assert batches[0].column("name").to_pylist() == ["a", None, "c", None, "e"]
    assert reader.stats.records == {"s": 5}


def test_the_bulk_path_falls_back_per_line_for_odd_values_and_names_a_bad_line():
    events = list(SingerReader().read(lines(FLAT, record(id=1, name=5), record(id=2, name="b"))))
    assert events[-1].batch.column("name").to_pylist() == ["5", "b"]  # text for the stage to cast or reject
    with pytest.raises(SingerProtocolError, match="^line 3: not a JSON message"):
        list(SingerReader().read(lines(FLAT, record(id=1)) + [b'{"type":"RECORD","stream":"s","record":{"id":']))
    with pytest.raises(SingerProtocolError, match="^line 2: RECORD for stream 's' without a 'record' object"):
        list(SingerReader().read(lines(FLAT) + [b'{"type":"RECORD","stream":"s"}']))
