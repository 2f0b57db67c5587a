"""The Airbyte wire format, the configured catalog, RECORD → Arrow typing and state translation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest

from dativo_ingest.engines.airbyte.connector import ConnectorFailed
from dativo_ingest.engines.airbyte.engine import configure_catalog, read_messages
from dativo_ingest.engines.airbyte.protocol import (
    AirbyteStream,
    ProtocolError,
    check_record,
    parse_message,
    state_kind,
    stream_states,
)
from dativo_ingest.engines.airbyte.records import RecordBuffers, record_columns
from dativo_ingest.engines.airbyte.state import airbyte_checkpoints, airbyte_state_from_envelope
from dativo_ingest.engines.common.schema import JSON, TIMESTAMP, TIMESTAMP_TZ, column_kind
from dativo_ingest.errors import ConfigError
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.stream import Batch, Checkpoint, Log, Trace

USERS = AirbyteStream.from_dict({
    "name": "users", "supported_sync_modes": ["full_refresh", "incremental"], "source_defined_cursor": True,
    "default_cursor_field": ["updated_at"], "source_defined_primary_key": [["id"]],
    "json_schema": {"type": "object", "properties": {
        "id": {"type": "integer"}, "Name": {"type": ["null", "string"]}, "age": {"type": "integer"},
        "score": {"type": "number"}, "active": {"type": "boolean"},
        "updated_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_with_timezone"},
        "born": {"type": "string", "format": "date"},
        "seen": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}}}}})
FILE = AirbyteStream.from_dict({"name": "employees", "json_schema": {"type": "object", "properties": {
    "Employee_number": {"type": ["number", "null"]}}}, "supported_sync_modes": ["full_refresh"]})


def test_lines_that_are_not_messages_are_none_and_bad_records_are_protocol_errors() -> None:
    assert parse_message(b'{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}\n')["type"] == "LOG"
    for junk in (b"plain text\n", b'{"type": "RECORD", "rec', b'{"no": "type"}', b'{"type": "NOPE"}', b"[1, 2]"):
        assert parse_message(junk) is None
    assert check_record({"type": "RECORD", "record": {"stream": "s", "data": {"a": 1}}}) == ("s", {"a": 1})
    with pytest.raises(ProtocolError, match="without 'record.stream'"):
        check_record({"type": "RECORD", "record": {"stream": "s", "data": [1]}})


def test_state_kinds() -> None:
    stream = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "a"}, "stream_state": {"c": 1}}}
    glob = {"type": "GLOBAL", "global": {"shared_state": {"lsn": 9}, "stream_states": [
        {"stream_descriptor": {"name": "a"}, "stream_state": {"c": 1}},
        {"stream_descriptor": {"name": "b"}, "stream_state": {"c": 2}}]}}
    assert state_kind(stream) == "STREAM" and stream_states(stream) == [("a", {"c": 1})]
    assert state_kind(glob) == "GLOBAL" and stream_states(glob) == [("a", {"c": 1}), ("b", {"c": 2})]
    assert state_kind({"type": "LEGACY", "data": {}}) == state_kind({"data": {"a": {}}}) == "LEGACY"
    with pytest.raises(ProtocolError, match="unknown type 'WEIRD'"):
        state_kind({"type": "WEIRD"})


def test_the_configured_catalog_follows_the_asset_and_the_stream() -> None:
    catalog = configure_catalog([USERS, FILE], ["users"], primary_key=["id"], write_mode="merge",
                                fields=["id", "name", "address"])
    (users,) = catalog.to_dict()["streams"]
    assert users["sync_mode"] == "incremental" and users["cursor_field"] == ["updated_at"]
    assert users["primary_key"] == [["id"]] and users["destination_sync_mode"] == "append_dedup"
    # selected fields (matched ignoring case) + the cursor; the stream's other keys are kept as discovered
    assert sorted(users["stream"]["json_schema"]["properties"]) == ["Name", "address", "id", "updated_at"]
    assert users["stream"]["supported_sync_modes"] == ["full_refresh", "incremental"]

    full = configure_catalog([USERS, FILE], ["users", "employees"], incremental=False, write_mode="overwrite")
    modes = {s["stream"]["name"]: (s["sync_mode"], s["destination_sync_mode"]) for s in full.to_dict()["streams"]}
    assert modes == {"users": ("full_refresh", "overwrite"), "employees": ("full_refresh", "overwrite")}
    assert "cursor_field" not in full.to_dict()["streams"][0]
    with pytest.raises(ConfigError, match=r"stream\(s\) orders not in the connector's catalog "
                                          r"\(available: employees, users\)"):
        configure_catalog([USERS, FILE], ["orders"])


def test_json_schema_types_become_arrow_types_and_nested_values_json_text() -> None:
    props = USERS.properties
    assert column_kind(props["address"]) == column_kind(props["tags"]) == JSON
    assert column_kind(props["updated_at"]) == TIMESTAMP_TZ and column_kind(props["seen"]) == TIMESTAMP
    rows = [
        {"id": 1, "Name": "Ann", "age": 30, "score": 1, "active": True, "updated_at": "2024-01-01T10:00:00+02:00",
         "born": "1990-05-01", "seen": "2024-01-01T10:00:00", "address": {"city": "Oslo"}, "tags": ["a", "b"]},
        {"id": 2, "Name": None, "age": None, "score": 2.5, "active": False, "updated_at": "2024-01-02T00:00:00",
         "born": None, "seen": None, "address": None, "tags": []},
    ]
    batch = record_columns(USERS.json_schema).to_batch(rows)
    types = {f.name: f.type for f in batch.schema}
    assert types["id"] == pa.int64() and types["score"] == pa.float64() and types["active"] == pa.bool_()
    assert types["updated_at"] == pa.timestamp("us", tz="UTC") and types["born"] == pa.date32()
    assert types["seen"] == pa.timestamp("us") and types["address"] == types["tags"] == pa.string()
    out = batch.to_pylist()
    assert out[0]["updated_at"] == dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.timezone.utc)
    assert out[1]["updated_at"] == dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)  # no offset: read as UTC
    assert orjson.loads(out[0]["address"]) == {"city": "Oslo"} and out[0]["tags"] == '["a","b"]'
    assert out[1]["address"] is None and out[1]["tags"] == "[]"


def test_values_that_break_the_declared_type_fall_back_to_text_for_the_stage_to_cast() -> None:
    rows = [{"id": "7", "age": 1.5, "active": "yes", "updated_at": "soon"}, {"id": 8, "age": 2}]
    batch = record_columns(USERS.json_schema, ["id", "age", "active", "updated_at", "missing"]).to_batch(rows)
    assert batch.column("id").to_pylist() == ["7", "8"]
    assert batch.column("age").to_pylist() == ["1.5", "2"]
    assert batch.column("active").to_pylist() == ["yes", None]
    assert batch.column("updated_at").to_pylist() == ["soon", None]
    assert batch.schema.field("missing").type == pa.string()  # not declared and always null
    whole = record_columns(FILE.json_schema, ["employee_number"]).to_batch([{"Employee_number": 43554}])
    assert whole.schema.names == ["Employee_number"] and whole.column(0).type == pa.int64()


# -- state translation -------------------------------------------------------------------------------------


def test_airbyte_states_become_checkpoints_with_the_native_cursor_beside() -> None:
    stream = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"},
                                           "stream_state": {"updated_at": "2024-05-01T00:00:00+00:00", "seed": 1}}}
    (cp,) = airbyte_checkpoints(stream, {"users": "updated_at"})
    assert cp == Checkpoint("users", {"airbyte": {"stream_state": {"updated_at": "2024-05-01T00:00:00+00:00",
                                                                    "seed": 1}},
                                      "cursor": {"field": "updated_at", "value": "2024-05-01T00:00:00+00:00"}},
                            dialect="airbyte.stream")
    glob = {"type": "GLOBAL", "global": {"shared_state": {"lsn": 5}, "stream_states": [
        {"stream_descriptor": {"name": "users"}, "stream_state": {"id": 10}}]}}
    cps = airbyte_checkpoints(glob, {"users": "id"})
    assert [c.stream for c in cps] == ["users", None] and {c.dialect for c in cps} == {"airbyte.global"}
    assert cps[0].state["cursor"] == {"field": "id", "value": "10"} and cps[1].state == {
        "airbyte_global": {"shared_state": {"lsn": 5}}}
    legacy = airbyte_checkpoints({"data": {"users": {"id": 3}}}, {"users": "id"})
    assert legacy[0] == Checkpoint(None, {"airbyte_legacy": {"users": {"id": 3}}}, dialect="airbyte.legacy")
    assert legacy[1] == Checkpoint("users", {"cursor": {"field": "id", "value": "3"}}, dialect="airbyte.legacy")


def test_the_envelope_gives_each_dialect_back_in_its_own_shape() -> None:
    streams = [("users", None, "updated_at")]
    assert airbyte_state_from_envelope(StateEnvelope(), streams) is None
    own = {"airbyte": {"stream_state": {"updated_at": "2024-05-01T00:00:00+00:00", "seed": 1}}}
    env = StateEnvelope(engine="airbyte", dialect="airbyte.stream", streams={"users": own})
    assert airbyte_state_from_envelope(env, streams) == [{"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "users"}, "stream_state": {"updated_at": "2024-05-01T00:00:00+00:00",
                                                                 "seed": 1}}}]
    env = StateEnvelope(engine="airbyte", dialect="airbyte.global", streams={"users": own},
                        shared={"airbyte_global": {"shared_state": {"lsn": 5}}})
    (glob,) = airbyte_state_from_envelope(env, streams)
    assert glob["type"] == "GLOBAL" and glob["global"]["shared_state"] == {"lsn": 5}
    assert glob["global"]["stream_states"][0]["stream_state"]["seed"] == 1
    env = StateEnvelope(engine="airbyte", dialect="airbyte.legacy", shared={"airbyte_legacy": {"users": {"x": 1}}})
    assert airbyte_state_from_envelope(env, streams) == {"users": {"x": 1}}


def test_a_native_cursor_starts_the_connector_and_a_later_one_moves_its_state_forward() -> None:
    native = StateEnvelope(engine="native", streams={"users": {"cursor": {"field": "updated_at",
                                                                          "value": "2024-06-01 00:00:00"}}})
    assert airbyte_state_from_envelope(native, [("users", None, "updated_at")]) == [{"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "users"}, "stream_state": {"updated_at": "2024-06-01 00:00:00"}}}]
    both = StateEnvelope(engine="native", streams={"users": {
        "airbyte": {"stream_state": {"updated_at": "2024-05-01T00:00:00+00:00", "seed": 1}},
        "cursor": {"field": "updated_at", "value": "2024-06-01T00:00:00+00:00"}}})
    (msg,) = airbyte_state_from_envelope(both, [("users", None, "updated_at")])
    assert msg["stream"]["stream_state"] == {"updated_at": "2024-06-01T00:00:00+00:00", "seed": 1}
    older = StateEnvelope(streams={"users": {"airbyte": {"stream_state": {"updated_at": "2024-07-01"}},
                                             "cursor": {"field": "updated_at", "value": "2024-06-01"}}})
    (msg,) = airbyte_state_from_envelope(older, [("users", None, "updated_at")])
    assert msg["stream"]["stream_state"] == {"updated_at": "2024-07-01"}  # the connector's own is later: kept
    other = StateEnvelope(streams={"users": {"cursor": {"field": "created_at", "value": "2024-06-01"}}})
    assert airbyte_state_from_envelope(other, [("users", None, "updated_at")]) is None  # another field: useless
    numeric = StateEnvelope(streams={"users": {"cursor": {"field": "id", "value": "42"}}})
    (msg,) = airbyte_state_from_envelope(numeric, [("users", None, "id")], numeric_cursors=frozenset({"users"}))
    assert msg["stream"]["stream_state"] == {"id": 42}


# -- holding rows back until their STATE -------------------------------------------------------------------


class _Connector:
    """Stands in for AirbyteConnector.read_blocks/finish with canned stdout."""

    name = "fake"
    redact = None

    def __init__(self, lines: list[dict[str, Any] | bytes], rc: int = 0) -> None:
        self.lines = [line if isinstance(line, bytes) else orjson.dumps(line) + b"\n" for line in lines]
        self.rc = rc

    def read_blocks(self, args: list[str]) -> Iterator[bytes]:
        """Blocks of three lines: some all RECORDs of one stream (taken whole), some mixed (split)."""
        for i in range(0, len(self.lines), 3):
            yield b"".join(self.lines[i:i + 3])

    def finish(self) -> tuple[int, list[str]]:
        return self.rc, ["boom"] if self.rc else []


def _rec(i: int, stream: str = "users") -> dict[str, Any]:
    return {"type": "RECORD", "record": {"stream": stream, "data": {"id": i}, "emitted_at": 0}}


def _state(i: int, stream: str = "users") -> dict[str, Any]:
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                                                    "stream_state": {"id": i}}}}


def _buffers(hold_bytes: int = 1 << 20, streams: tuple[str, ...] = ("users",)) -> RecordBuffers:
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    return RecordBuffers({s: record_columns(schema) for s in streams}, batch_rows=2, batch_bytes=1 << 20,
                         hold_bytes=hold_bytes)


def _ids(messages: list[Any]) -> list[Any]:
    out: list[Any] = []
    for m in messages:
        if isinstance(m, Batch):
            out += [("row", m.stream, i) for i in m.data.column("id").to_pylist()]
        elif isinstance(m, Checkpoint):
            out.append(("state", m.stream, m.state["airbyte"]["stream_state"]["id"]))
    return out


def test_rows_are_passed_on_only_with_the_state_that_covers_them() -> None:
    lines = [_rec(1), _rec(2), _rec(3), _rec(1, "items"), _state(3), _rec(4), _state(1, "items"), _rec(5)]
    messages = list(read_messages(_Connector(lines), [], _buffers(streams=("users", "items")), {"users": "id"}))
    assert _ids(messages) == [("row", "users", 1), ("row", "users", 2), ("row", "users", 3), ("state", "users", 3),
                              ("row", "items", 1), ("state", "items", 1), ("row", "users", 4), ("row", "users", 5)]


def test_a_failure_after_covered_rows_lets_the_runner_commit_them() -> None:
    lines = [_rec(1), _rec(2), _rec(3), _state(3), _rec(4), _rec(5)]
    seen: list[Any] = []
    with pytest.raises(ConnectorFailed, match="failed: boom \\(exit code 1\\)") as info:
        for m in read_messages(_Connector(lines, rc=1), [], _buffers(), {"users": "id"}):
            seen.append(m)
    assert _ids(seen) == [("row", "users", 1), ("row", "users", 2), ("row", "users", 3), ("state", "users", 3)]
    assert info.value.commit_checkpointed


def test_rows_over_the_hold_limit_are_passed_on_and_then_a_failure_commits_nothing() -> None:
    lines = [_rec(1), _rec(2), _state(2), _rec(3), _rec(4), _rec(5), _rec(6),
             {"type": "TRACE", "trace": {"type": "ERROR", "error": {"message": "quota exceeded"}}}]
    seen: list[Any] = []
    with pytest.raises(ConnectorFailed, match="failed: quota exceeded") as info:
        for m in read_messages(_Connector(lines, rc=1), [], _buffers(hold_bytes=1), {"users": "id"}):
            seen.append(m)
    assert ("row", "users", 3) in _ids(seen)  # passed on uncovered (memory stays bounded) …
    assert not info.value.commit_checkpointed  # … so the runner must not commit them


def test_logs_traces_and_estimates_pass_through_and_junk_is_counted() -> None:
    lines = [{"type": "LOG", "log": {"level": "WARN", "message": "slow\n  api"}}, b"hello\n",
             {"type": "TRACE", "trace": {"type": "ESTIMATE", "estimate": {"name": "users", "type": "STREAM",
                                                                         "row_estimate": 10}}},
             {"type": "TRACE", "trace": {"type": "STREAM_STATUS", "stream_status": {
                 "stream_descriptor": {"name": "users"}, "status": "COMPLETE"}}}, _rec(1)]
    messages = list(read_messages(_Connector(lines), [], _buffers(), {"users": "id"}))
    assert Log("WARNING", "fake: slow api") in messages
    assert Trace("estimate", {"stream": "users", "scope": "STREAM", "rows": 10, "bytes": None}) in messages
    assert Trace("stream_status", {"stream": "users", "status": "COMPLETE"}) in messages
    assert Log("WARNING", "fake: not an Airbyte message, ignored: hello") in messages
    assert _ids(messages) == [("row", "users", 1)]
    with pytest.raises(ConnectorFailed, match="invalid STATE message"):
        list(read_messages(_Connector([{"type": "STATE", "state": {"type": "STREAM", "stream": {}}}]), [],
                           _buffers(), {}))


def test_the_arrow_reader_and_the_python_pass_give_the_same_batch() -> None:
    rows = [
        {"id": 1, "Name": "Ann", "age": 30, "score": 1, "active": True, "updated_at": "2024-01-01T10:00:00+02:00",
         "born": "1990-05-01", "seen": "2024-01-01T10:00:00", "address": {"city": "Oslo"}, "tags": ["a", "b"],
         "undeclared": {"kept": [1]}},
        {"id": 2, "Name": None, "age": None, "score": 2.5, "active": False, "updated_at": "2024-01-02T00:00:00",
         "address": None, "tags": []},
    ]
    lines = [orjson.dumps({"type": "RECORD", "record": {"stream": "users", "data": r, "emitted_at": 1}}) + b"\n"
             for r in rows]
    columns = record_columns(USERS.json_schema, [*USERS.properties, "undeclared"])
    fast, slow = columns.from_lines(lines), columns.to_batch(rows)
    assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist()
    assert fast.column("undeclared").to_pylist() == ['{"kept":[1]}', None]
    # a value that does not fit its declared type: the batch is read again in Python, the column becomes text
    odd = [*lines, orjson.dumps({"type": "RECORD", "record": {"stream": "users", "data": {"id": "x"}}}) + b"\n"]
    assert columns.from_lines(odd).column("id").to_pylist() == ["1", "2", "x"]
    for broken in (b'{"type":"RECORD","record":{"stream":"users","data":{"id":\n', b'{"type":"RECORD","record":{}}\n'):
        with pytest.raises(ProtocolError):
            columns.from_lines([lines[0], broken])


def test_a_big_batch_parsed_as_two_halves_is_the_batch_the_python_pass_gives(monkeypatch) -> None:
    from dativo_ingest.engines.common.records import SPLIT_BYTES, StreamColumns

    parsed: list[int] = []
    whole_parse = StreamColumns._parse
    monkeypatch.setattr(StreamColumns, "_parse", lambda self, data: parsed.append(data.size) or whole_parse(self, data))

    columns = record_columns(USERS.json_schema, [*USERS.properties, "undeclared"])
    rows = [{"id": i, "Name": f"n{i}" * 20, "age": i % 90, "score": i / 4, "active": i % 2 == 0,
             "updated_at": "2024-01-01T10:00:00+02:00", "address": {"city": f"c{i}"}, "tags": [str(i)],
             # the first half has no value of this undeclared field: its halves infer two types, and are read whole
             "undeclared": None if i < 12_000 else f"u{i}"} for i in range(24_000)]
    lines = [orjson.dumps({"type": "RECORD", "record": {"stream": "users", "data": r}}) + b"\n" for r in rows]
    assert sum(map(len, lines)) > SPLIT_BYTES
    fast, slow = columns.from_lines(lines, len(lines)), columns.to_batch(rows)
    assert fast.schema == slow.schema and fast.to_pylist() == slow.to_pylist()
    same = [line.replace(b',"undeclared":null', b',"undeclared":"x"') for line in lines]  # halves alike: split
    parsed.clear()
    assert columns.from_lines(same, len(same)).column("undeclared").to_pylist() == \
        ["x"] * 12_000 + [f"u{i}" for i in range(12_000, 24_000)]
    assert len(parsed) == 2 and abs(parsed[0] - parsed[1]) < 1000  # two halves, not the whole again
    assert columns.from_lines(same, len(same)).column("id").to_pylist() == list(range(24_000))
    bad = [*lines[:-1], b'{"type":"RECORD","record":{"stream":"users","data":{"id":"x"}}}\n']  # in the second half
    assert columns.from_lines(bad, len(bad)).column("id").to_pylist()[-2:] == ["23998", "x"]
