"""A tap's stdout → events: a stream's schema, its records as Arrow batches, a state, an activate-version.

Records are gathered per stream into Arrow record batches of at most ``batch_rows`` rows (or ``batch_bytes`` of
input), so memory stays bounded; every gathered record is flushed before a ``StateEvent``, so a state always
follows the records it covers. Runs of RECORD lines are kept undecoded and parsed in bulk by Arrow's JSON reader
(``engines.common.records``); a line in another layout is decoded once to learn its type and then joins its
stream's lines the same way.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from dativo_ingest.engines.common.records import BATCH_BYTES, BATCH_ROWS, PendingLines
from dativo_ingest.engines.singer.protocol import (
    ACTIVATE_VERSION,
    BATCH,
    RECORD,
    RECORD_PREFIXES,
    SCHEMA,
    STATE,
    BatchMessage,
    SingerProtocolError,
    activate_version,
    message_stream,
    parse_message,
    record_data,
    snippet,
    state_value,
)
from dativo_ingest.engines.singer.records import StreamSchema

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = BATCH_ROWS
DEFAULT_BATCH_BYTES = BATCH_BYTES
_COMPACT, _SPACED = len(RECORD_PREFIXES[0]), len(RECORD_PREFIXES[1])
_QUOTE = ord('"')
_NEWLINE = ord("\n")
_COALESCE = 1 << 18


@dataclass(frozen=True)
class SchemaEvent:
    """A stream's SCHEMA."""

    schema: StreamSchema


@dataclass(frozen=True)
class RecordsEvent:
    """Records of a stream, as one Arrow batch."""

    stream: str
    batch: pa.RecordBatch


@dataclass(frozen=True)
class StateEvent:
    """A STATE: every record before it has come in an earlier event."""

    value: dict[str, Any]
    line_no: int


@dataclass(frozen=True)
class ActivateVersionEvent:
    """ACTIVATE_VERSION: the stream's rows of older versions are gone."""

    stream: str
    version: int


Event = SchemaEvent | RecordsEvent | StateEvent | ActivateVersionEvent


@dataclass
class ReaderStats:
    """What a reader has seen: lines, records per stream, states, schemas, BATCH files, ignored message types."""

    lines: int = 0
    records: dict[str, int] = field(default_factory=dict)
    states: int = 0
    schemas: int = 0
    batch_files: int = 0
    ignored_types: dict[str, int] = field(default_factory=dict)

    def count(self, stream: str, rows: int) -> None:
        """``rows`` more records of ``stream``."""
        self.records[stream] = self.records.get(stream, 0) + rows


class SingerReader:
    """Feed a tap's stdout lines; get schema, record-batch, state and activate-version events.

    ``columns(stream)`` names the columns worth building (None: every column of the SCHEMA); records of a
    stream for which it returns an empty list are counted and skipped without decoding their fields.
    ``observe(stream, lines)``: called with each run of a built stream's RECORD lines (``test-connector``).
    """

    def __init__(self, *, batch_rows: int = DEFAULT_BATCH_ROWS, batch_bytes: int = DEFAULT_BATCH_BYTES,
                 columns: Callable[[str], Iterable[str] | None] | None = None, block_bytes: int = _COALESCE,
                 observe: Callable[[str, bytes], None] | None = None) -> None:
        self.batch_rows = batch_rows
        self.block_bytes = block_bytes
        self.batch_bytes = batch_bytes
        self._columns = columns
        self.observe = observe
        self.schemas: dict[str, StreamSchema] = {}
        #: the lines of each stream that has columns, waiting to become a batch
        self._pending: dict[str, PendingLines] = {}
        #: every stream with a SCHEMA, by its name as it appears in a RECORD line
        self._by_key: dict[bytes, str] = {}
        #: by a RECORD line's start up to its stream name's closing quote: the regex matching a run of such lines
        self._runs: dict[bytes, re.Pattern[bytes]] = {}
        self.stats = ReaderStats()

    # -- lines ------------------------------------------------------------------------------------------
    def read(self, lines: Iterable[bytes], *, flush_at_end: bool = True) -> Iterator[Event]:
        """Every event of ``lines``, then (unless told not to) the records still gathered."""
        return self.read_blocks((line if line.endswith(b"\n") else line + b"\n" for line in lines),
                                flush_at_end=flush_at_end)

    def read_blocks(self, blocks: Iterable[bytes], *, flush_at_end: bool = True) -> Iterator[Event]:
        """Every event of ``blocks`` (stdout cut at line ends), then (unless told not to) the records still
        gathered. Runs of RECORD lines of one stream are kept whole, without a Python step per line; other lines
        go one by one. Blank lines are skipped and not counted. Small blocks (a tap flushing every line) are
        joined up to 256 KiB first, so that the work per block is paid per many lines."""
        pending: list[bytes] = []
        held = 0
        for block in blocks:
            pending.append(block)
            held += len(block)
            if held >= self.block_bytes:
                yield from self._block(pending[0] if len(pending) == 1 else b"".join(pending))
                pending, held = [], 0
        if pending:
            yield from self._block(b"".join(pending))
        if flush_at_end:
            yield from self.flush()

    def feed(self, line: bytes) -> Iterator[Event]:
        """The events of one line (``read`` does the same for many, faster)."""
        yield from self.read([line], flush_at_end=False)

    def flush(self, stream: str | None = None) -> Iterator[RecordsEvent]:
        """Gathered records as batches (of one stream, or of all)."""
        for name in [stream] if stream is not None else list(self._pending):
            pending = self._pending.get(name)
            if pending is not None:
                for batch in pending.seal():
                    yield RecordsEvent(name, batch)

    def _block(self, block: bytes) -> Iterator[Event]:
        pos, size = 0, len(block)
        while pos < size:
            if block.startswith(RECORD_PREFIXES, pos):
                end = yield from self._keep_run(block, pos)
                if end > pos:
                    pos = end
                    continue
            end = block.find(b"\n", pos) + 1 or size
            line = block[pos:end]
            pos = end
            if line.isspace():
                continue
            self.stats.lines += 1
            yield from self._message(line, self.stats.lines)

    def _keep_run(self, block: bytes, pos: int) -> Generator[Event, None, int]:
        """Keep the run of RECORD lines of one known stream starting at ``pos`` undecoded; returns where the run
        ends (``pos``: take the ordinary path for this line)."""
        start = pos + (_COMPACT if block[pos + 8] == _QUOTE else _SPACED)
        close = block.find(b'"', start)
        newline = block.find(b"\n", start)
        if close < 0 or 0 <= newline < close:
            return pos
        stream = self._by_key.get(block[start:close])
        if stream is None:
            return pos
        prefix = block[pos:close + 1]
        rows = block.count(b"\n", pos)
        if block.endswith(b"\n") and block.count(b"\n" + prefix, pos) == rows - 1:
            end = len(block)  # the usual case: the rest of the block is the run (two counts, no regex)
        else:
            run = self._runs.get(prefix)
            if run is None:
                line = re.escape(prefix) + rb"[^\n]*(?:\n|\Z)"
                run = self._runs[prefix] = re.compile(line + b"(?:" + line + b")*")
            end = run.match(block, pos).end()  # type: ignore[union-attr]  # the prefix matches at pos
            rows = block.count(b"\n", pos, end) + (block[end - 1] != _NEWLINE)
        chunk = block[pos:end] if pos or end < len(block) else block
        first = self.stats.lines + 1
        self.stats.lines += rows
        yield from self._add(stream, chunk if chunk.endswith(b"\n") else chunk + b"\n", rows, first)
        return end

    def _add(self, stream: str, chunk: bytes, rows: int, first: int) -> Iterator[Event]:
        self.stats.count(stream, rows)
        pending = self._pending.get(stream)
        if pending is not None and pending.add(chunk, rows, first):  # else a stream nobody wants: counted, skipped
            yield from self.flush(stream)

    # -- messages ----------------------------------------------------------------------------------------
    def _message(self, line: bytes, n: int) -> Iterator[Event]:
        kind, message = parse_message(line, n)
        if kind == RECORD:
            stream = message_stream(message, n)
            if stream not in self.schemas:
                raise SingerProtocolError(n, f"RECORD for stream '{stream}' before its SCHEMA")
            record_data(message, n)
            yield from self._add(stream, line if line.endswith(b"\n") else line + b"\n", 1, n)
        elif kind == SCHEMA:
            yield from self._schema(message, n)
        elif kind == STATE:
            value = state_value(message, n)
            yield from self.flush()
            self.stats.states += 1
            yield StateEvent(value, n)
        elif kind == ACTIVATE_VERSION:
            stream = message_stream(message, n)
            yield from self.flush(stream)
            yield ActivateVersionEvent(stream, activate_version(message, n))
        elif kind == BATCH:
            yield from self._batch(message, n)
        else:
            self.stats.ignored_types[kind] = self.stats.ignored_types.get(kind, 0) + 1
            if self.stats.ignored_types[kind] == 1:
                log.warning("singer: ignoring message type %s (line %d)", kind, n)

    def _schema(self, message: dict[str, Any], n: int) -> Iterator[Event]:
        stream = message_stream(message, n)
        yield from self.flush(stream)
        schema = StreamSchema.from_message(message, n)
        self.schemas[stream] = schema
        self.stats.schemas += 1
        wanted = self._columns(stream) if self._columns else None
        columns = schema.columns(wanted)
        self._pending.pop(stream, None)
        if columns.keys:
            observe = self.observe
            self._pending[stream] = PendingLines(
                columns, batch_rows=self.batch_rows, batch_bytes=self.batch_bytes,
                observe=None if observe is None else lambda chunk: observe(stream, chunk))
        self._by_key[orjson.dumps(stream)[1:-1]] = stream
        yield SchemaEvent(schema)

    def _batch(self, message: dict[str, Any], n: int) -> Iterator[Event]:
        stream = message_stream(message, n)
        if stream not in self.schemas:
            raise SingerProtocolError(n, f"BATCH for stream '{stream}' before its SCHEMA")
        batch = BatchMessage.parse(message, n)
        yield from self.flush(stream)
        for path in batch.files:
            self.stats.batch_files += 1
            if batch.format == "parquet":
                yield from self._parquet_file(stream, path)
            else:
                yield from self._jsonl_file(stream, path, batch.compression, n)

    def _jsonl_file(self, stream: str, path: Path, compression: str | None, n: int) -> Iterator[Event]:
        pending = self._pending.get(stream)
        records: list[dict[str, Any]] = []
        opener = gzip.open if compression == "gzip" or path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            for i, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise SingerProtocolError(n, f"BATCH file {path} line {i} is not JSON: {snippet(raw)!r}") from None
                if not isinstance(record, dict):
                    raise SingerProtocolError(n, f"BATCH file {path} line {i} is not a JSON object")
                self.stats.count(stream, 1)
                if pending is None:
                    continue
                records.append(record)
                if len(records) >= self.batch_rows:
                    yield RecordsEvent(stream, pending.columns.to_batch(records))
                    records = []
        if records and pending is not None:
            yield RecordsEvent(stream, pending.columns.to_batch(records))

    def _parquet_file(self, stream: str, path: Path) -> Iterator[Event]:
        import pyarrow.parquet as pq

        pending = self._pending.get(stream)
        pf = pq.ParquetFile(path)
        lower = {name.lower(): name for name in pf.schema_arrow.names}
        keys = pending.columns.keys if pending is not None else []
        wanted = [lower[k.lower()] for k in keys if k.lower() in lower]
        for batch in pf.iter_batches(batch_size=self.batch_rows, columns=wanted):
            self.stats.count(stream, batch.num_rows)
            if batch.num_rows and pending is not None:
                yield RecordsEvent(stream, batch)


__all__ = ["ActivateVersionEvent", "Event", "ReaderStats", "RecordsEvent", "SchemaEvent", "SingerReader",
           "StateEvent"]
