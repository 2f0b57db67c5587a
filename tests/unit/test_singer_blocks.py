"""The Singer reader over stdout blocks (runs of RECORD lines kept whole): same events, order, line numbers
and batch sizes as line by line."""

from __future__ import annotations

import orjson
import pytest

from dativo_ingest.engines.singer.protocol import SingerProtocolError
from dativo_ingest.engines.singer.reader import RecordsEvent, SingerReader, StateEvent

FLAT = {"type": "SCHEMA", "stream": "s", "schema": {"properties": {
    "id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}}


def _stream(n: int, state_every: int) -> bytes:
    out = [orjson.dumps(FLAT)]
    for i in range(1, n + 1):
        out.append(orjson.dumps({"type": "RECORD", "stream": "s", "record": {"id": i, "name": f"n{i}"}}))
        if i % state_every == 0:
            out.append(orjson.dumps({"type": "STATE", "value": {"bookmarks": {"s": {"v": i}}}}))
    return b"\n".join(out) + b"\n"


def _blocks(data: bytes, size: int) -> list[bytes]:
    blocks, pos = [], 0
    while pos < len(data):
        cut = data.rfind(b"\n", pos, pos + size) + 1 or data.find(b"\n", pos) + 1 or len(data)
        blocks.append(data[pos:cut])
        pos = cut
    return blocks


def _summary(events) -> list:
    return [(type(e).__name__, e.batch.column("id").to_pylist() if isinstance(e, RecordsEvent) else
             e.value if isinstance(e, StateEvent) else None) for e in events]


@pytest.mark.parametrize("size", [40, 300, 5000, 1 << 20])
def test_blocks_give_the_events_of_lines(size):
    data = _stream(57, state_every=20)
    by_lines = SingerReader(batch_rows=7)
    expected = _summary(by_lines.read(data.splitlines()))
    reader = SingerReader(batch_rows=7, block_bytes=min(size, 1 << 18))
    events = list(reader.read_blocks(_blocks(data, size)))
    ids = [i for kind, value in _summary(events) if kind == "RecordsEvent" for i in value]
    assert ids == list(range(1, 58))
    assert all(e.batch.num_rows <= 7 for e in events if isinstance(e, RecordsEvent))
    # every STATE comes after exactly the records before it
    seen = 0
    for kind, value in _summary(events):
        if kind == "RecordsEvent":
            seen = value[-1]
        elif kind == "StateEvent":
            assert value["bookmarks"]["s"]["v"] == seen
    assert [k for k, _ in _summary(events) if k == "StateEvent"] == [k for k, _ in expected if k == "StateEvent"]
    assert reader.stats.lines == by_lines.stats.lines == 1 + 57 + 2
    assert reader.stats.records == {"s": 57}


def test_a_bad_line_in_a_run_is_named_by_its_number_and_blank_lines_are_not_counted():
    data = _stream(5, state_every=100).replace(b'"id":4,', b'"id":"x",').replace(b'{"id":3', b'{"id":3,')
    data = b"\n" + data  # a blank first line
    with pytest.raises(SingerProtocolError, match="^line 4: not a JSON message"):
        list(SingerReader().read_blocks([data]))


def test_a_record_before_its_schema_is_an_error_in_a_block():
    data = b'{"type":"RECORD","stream":"s","record":{"id":1}}\n' + orjson.dumps(FLAT) + b"\n"
    with pytest.raises(SingerProtocolError, match="^line 1: RECORD for stream 's' before its SCHEMA"):
        list(SingerReader().read_blocks([data]))


def test_a_last_line_without_a_newline_is_read():
    data = _stream(3, state_every=100).rstrip(b"\n")
    events = list(SingerReader().read_blocks([data]))
    assert [i for e in events if isinstance(e, RecordsEvent) for i in e.batch.column("id").to_pylist()] == [1, 2, 3]
