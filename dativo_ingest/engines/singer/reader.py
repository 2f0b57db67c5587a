"""The Singer wire format: the messages on a tap's stdout (the catalog: ``singer_catalog``). Parse only.

Messages (one JSON object per line): ``SCHEMA`` (a stream's JSON Schema, ``key_properties``,
``bookmark_properties``), ``RECORD``, ``STATE`` (opaque to the spec; SDK taps keep ``bookmarks``),
``ACTIVATE_VERSION`` (the stream's rows of older versions are gone: a full-table replace) and the
Meltano SDK's ``BATCH`` (records in local jsonl / parquet files named by a manifest).

``SingerReader`` turns the lines into events. Records are gathered per stream into Arrow record batches
of at most ``batch_rows`` rows (or ``batch_bytes`` of input), so memory stays bounded; every buffered
record is flushed before a ``State`` event, so a state always follows the records it covers. RECORD
lines of flat streams are kept undecoded and parsed in bulk by pyarrow's JSON reader; anything else
(objects, arrays, odd values, another layout) goes through orjson, line by line.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson
import pyarrow as pa

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 50_000
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
_SNIPPET = 80


class SingerProtocolError(Exception):
    """The tap broke the Singer protocol (a line that is not JSON, a RECORD before its SCHEMA, …)."""

    def __init__(self, line_no: int | None, message: str) -> None:
        self.line_no = line_no
        super().__init__(f"line {line_no}: {message}" if line_no else message)


# -- schema ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    #: objects, arrays and mixed types travel as JSON text
    as_json: bool = False
    #: JSON Schema ``format`` (date-time, date, time, singer.decimal …), kept as field metadata
    format: str | None = None


def _types(prop: dict[str, Any]) -> list[str]:
    kind = prop.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    out: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in prop.get(key) or []:
            if isinstance(option, dict):
                out += _types(option)
    return out


def column_for(name: str, prop: Any) -> Column:
    """The Arrow column a JSON Schema property becomes."""
    prop = prop if isinstance(prop, dict) else {}
    kinds = {k for k in _types(prop) if k != "null"}
    fmt = prop.get("format") if isinstance(prop.get("format"), str) else None
    if not kinds:
        if prop.get("properties") or prop.get("items"):
            return Column(name, pa.string(), as_json=True)
        return Column(name, pa.string(), as_json=not prop, format=fmt)
    if kinds == {"integer"}:
        return Column(name, pa.int64())
    if kinds <= {"integer", "number"}:
        return Column(name, pa.float64())
    if kinds == {"boolean"}:
        return Column(name, pa.bool_())
    if kinds == {"string"}:
        return Column(name, pa.string(), format=fmt)
    return Column(name, pa.string(), as_json=True)


@dataclass
class StreamSchema:
    """A stream's SCHEMA message, turned into Arrow terms."""

    stream: str
    json_schema: dict[str, Any]
    columns: list[Column]
    key_properties: list[str] = field(default_factory=list)
    bookmark_properties: list[str] = field(default_factory=list)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamSchema:
        schema = message.get("schema")
        if not isinstance(schema, dict):
            raise ValueError("SCHEMA message without a 'schema' object")
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise ValueError("SCHEMA message whose schema.properties is not an object")
        return cls(
            stream=str(message["stream"]),
            json_schema=schema,
            columns=[column_for(str(name), prop) for name, prop in props.items()],
            key_properties=[str(k) for k in message.get("key_properties") or []],
            bookmark_properties=[str(k) for k in message.get("bookmark_properties") or []],
        )

    @property
    def arrow_schema(self) -> pa.Schema:
        fields = []
        for c in self.columns:
            meta = {b"singer.format": c.format.encode()} if c.format else None
            if c.as_json:
                meta = {**(meta or {}), b"singer.json": b"true"}
            fields.append(pa.field(c.name, c.arrow, metadata=meta))
        return pa.schema(fields)

    def only(self, wanted: Iterable[str] | None) -> StreamSchema:
        """The same schema keeping only the columns named in ``wanted`` (matched case-insensitively)."""
        if wanted is None:
            return self
        keep = {w.lower() for w in wanted}
        return StreamSchema(self.stream, self.json_schema, [c for c in self.columns if c.name.lower() in keep],
                            self.key_properties, self.bookmark_properties)


def records_to_batch(records: Sequence[dict[str, Any]], schema: StreamSchema) -> pa.RecordBatch:
    """Decoded RECORD payloads → one Arrow record batch in ``schema``'s columns.

    A column whose values do not fit its declared type (``"abc"`` in an integer column) is carried as
    text for this batch, so the stage rejects only the offending rows.
    """
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for c in schema.columns:
        name = c.name
        values = [r.get(name) for r in records]
        if c.as_json:
            values = [None if v is None else orjson.dumps(v).decode() for v in values]
        try:
            array = pa.array(values, type=c.arrow)
            kind = c.arrow
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            array = pa.array([None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()
                              for v in values], type=pa.string())
            kind = pa.string()
        arrays.append(array)
        fields.append(pa.field(name, kind))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


# -- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaEvent:
    schema: StreamSchema


@dataclass(frozen=True)
class RecordsEvent:
    stream: str
    batch: pa.RecordBatch


@dataclass(frozen=True)
class StateEvent:
    value: dict[str, Any]
    line_no: int


@dataclass(frozen=True)
class ActivateVersionEvent:
    stream: str
    version: int


Event = SchemaEvent | RecordsEvent | StateEvent | ActivateVersionEvent


@dataclass
class _Buffer:
    schema: StreamSchema
    records: list[dict[str, Any]] = field(default_factory=list)
    nbytes: int = 0
    #: runs of RECORD lines kept undecoded, each ending in a newline (the fast path: parsed in bulk by
    #: pyarrow's JSON reader at flush), with the number of the run's first line and its line count
    raw: list[bytes] = field(default_factory=list)
    raw_lines: list[int] = field(default_factory=list)
    raw_rows: int = 0
    #: records of the fast path not yet added to the reader's stats
    uncounted: int = 0

    @property
    def fast(self) -> bool:
        """Columns pyarrow's JSON reader can type directly (objects and arrays need the orjson path)."""
        return bool(self.schema.columns) and not any(c.as_json for c in self.schema.columns)

    @property
    def rows(self) -> int:
        return len(self.records) + self.raw_rows


#: how SDK taps (compact) and singer-python taps (spaced) start a RECORD line
_RECORD_PREFIXES = (b'{"type":"RECORD","stream":"', b'{"type": "RECORD", "stream": "')
_COMPACT, _SPACED = len(_RECORD_PREFIXES[0]), len(_RECORD_PREFIXES[1])
_QUOTE = ord('"')
_FAST_BLOCK = 1 << 21
_NEWLINE = ord("\n")
_COALESCE = 1 << 18


@dataclass
class ReaderStats:
    lines: int = 0
    records: dict[str, int] = field(default_factory=dict)
    states: int = 0
    schemas: int = 0
    batch_files: int = 0
    ignored_types: dict[str, int] = field(default_factory=dict)


def snippet(line: bytes | str) -> str:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


class SingerReader:
    """Feed a tap's stdout lines; get schema, record-batch, state and activate-version events.

    ``columns(stream)`` names the columns worth building (None: every column of the SCHEMA);
    records of a stream for which ``columns`` returns an empty list are skipped without decoding
    their fields.
    """

    def __init__(self, *, batch_rows: int = DEFAULT_BATCH_ROWS, batch_bytes: int = DEFAULT_BATCH_BYTES,
                 columns: Callable[[str], Iterable[str] | None] | None = None, block_bytes: int = _COALESCE) -> None:
        self.batch_rows = batch_rows
        self.block_bytes = block_bytes
        self.batch_bytes = batch_bytes
        self._columns = columns
        self.schemas: dict[str, StreamSchema] = {}
        self._buffers: dict[str, _Buffer] = {}
        #: buffers the fast path may fill, by the stream's name as it appears in a RECORD line
        self._raw_buffers: dict[bytes, _Buffer] = {}
        #: by a RECORD line's start up to its stream name's closing quote: the regex matching a run of such lines
        self._runs: dict[bytes, re.Pattern[bytes]] = {}
        self.stats = ReaderStats()

    # -- lines ------------------------------------------------------------------------------------------
    def read(self, lines: Iterable[bytes], *, flush_at_end: bool = True) -> Iterator[Event]:
        """Every event of ``lines``, then (unless told not to) the records still buffered."""
        return self.read_blocks((line if line.endswith(b"\n") else line + b"\n" for line in lines),
                                flush_at_end=flush_at_end)

    def read_blocks(self, blocks: Iterable[bytes], *, flush_at_end: bool = True) -> Iterator[Event]:
        """Every event of ``blocks`` (stdout cut at line ends), then (unless told not to) the records still
        buffered. Runs of RECORD lines of one flat stream are kept whole, without a Python step per line;
        other lines go one by one. Blank lines are skipped and not counted. Small blocks (a tap flushing every
        line) are joined up to 256 KiB first, so that the work per block is paid per many lines."""
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

    def _block(self, block: bytes) -> Iterator[Event]:
        pos, size = 0, len(block)
        while pos < size:
            if block.startswith(_RECORD_PREFIXES, pos):
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

    def feed(self, line: bytes) -> Iterator[Event]:
        """The events of one line (``read`` does the same for many, faster)."""
        yield from self.read([line], flush_at_end=False)

    def _message(self, line: bytes, n: int) -> Iterator[Event]:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise SingerProtocolError(n, f"not a JSON message: {snippet(line)!r}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise SingerProtocolError(n, f"not a Singer message (a JSON object with a 'type'): {snippet(line)!r}")
        kind = message["type"].upper()
        if kind == "RECORD":
            yield from self._record(message, n, len(line))
        elif kind == "SCHEMA":
            yield from self._schema(message, n)
        elif kind == "STATE":
            value = message.get("value")
            if not isinstance(value, dict):
                raise SingerProtocolError(n, "STATE message without a 'value' object")
            yield from self.flush()
            self.stats.states += 1
            yield StateEvent(value, n)
        elif kind == "ACTIVATE_VERSION":
            stream = self._stream_of(message, n)
            yield from self.flush(stream)
            try:
                version = int(message["version"])
            except (KeyError, TypeError, ValueError):
                raise SingerProtocolError(n, f"ACTIVATE_VERSION for '{stream}' without an integer version") from None
            yield ActivateVersionEvent(stream, version)
        elif kind == "BATCH":
            yield from self._batch(message, n)
        else:
            self.stats.ignored_types[kind] = self.stats.ignored_types.get(kind, 0) + 1
            if self.stats.ignored_types[kind] == 1:
                log.warning("singer: ignoring message type %s (line %d)", kind, n)

    def flush(self, stream: str | None = None) -> Iterator[RecordsEvent]:
        """Buffered records as batches (of one stream, or of all)."""
        names = [stream] if stream is not None else list(self._buffers)
        for name in names:
            buffer = self._buffers.get(name)
            if buffer is None:
                continue
            if buffer.uncounted:
                self.stats.records[name] = self.stats.records.get(name, 0) + buffer.uncounted
                buffer.uncounted = 0
            if buffer.raw:
                batch = self._parse_raw(buffer)
            elif buffer.records:
                batch = records_to_batch(buffer.records, buffer.schema)
            else:
                continue
            buffer.records, buffer.raw, buffer.raw_lines = [], [], []
            buffer.nbytes = buffer.raw_rows = 0
            if batch.num_rows <= self.batch_rows:
                yield RecordsEvent(name, batch)
                continue
            for offset in range(0, batch.num_rows, self.batch_rows):  # a run may overshoot by up to a block
                yield RecordsEvent(name, batch.slice(offset, self.batch_rows))

    # -- the fast path -----------------------------------------------------------------------------------
    def _keep_run(self, block: bytes, pos: int) -> Generator[Event, None, int]:
        """Keep the run of RECORD lines of one known flat stream starting at ``pos`` undecoded; returns where
        the run ends (``pos``: take the ordinary path for this line)."""
        start = pos + (_COMPACT if block[pos + 8] == _QUOTE else _SPACED)
        close = block.find(b'"', start)
        newline = block.find(b"\n", start)
        if close < 0 or 0 <= newline < close:
            return pos
        buffer = self._raw_buffers.get(block[start:close])
        if buffer is None or buffer.records:
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
        buffer.uncounted += rows
        if buffer.schema.columns:  # else a stream nobody wants: counted, skipped
            buffer.raw.append(chunk if chunk.endswith(b"\n") else chunk + b"\n")
            buffer.raw_lines.append(first)
            buffer.raw_rows += rows
            buffer.nbytes += len(chunk)
            if buffer.raw_rows >= self.batch_rows or buffer.nbytes >= self.batch_bytes:
                yield from self.flush(buffer.schema.stream)
        return end

    def _parse_raw(self, buffer: _Buffer) -> pa.RecordBatch:
        """The buffered RECORD lines in one pyarrow JSON read; anything unusual goes the orjson way."""
        import pyarrow.json as pajson

        fields = [pa.field(c.name, c.arrow) for c in buffer.schema.columns]
        batch = None
        if buffer.nbytes:
            try:
                table = pajson.read_json(
                    pa.BufferReader(b"".join(buffer.raw)),
                    read_options=pajson.ReadOptions(block_size=_FAST_BLOCK),
                    parse_options=pajson.ParseOptions(explicit_schema=pa.schema([("record", pa.struct(fields))]),
                                                      unexpected_field_behavior="ignore"),
                )
                records = table.column("record")
                if records.null_count == 0 and table.num_rows == buffer.raw_rows:
                    columns = records.combine_chunks().flatten()
                    batch = pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                batch = None
        if batch is not None:
            return batch
        decoded = []
        for raw, n in _numbered_lines(buffer.raw, buffer.raw_lines):
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise SingerProtocolError(n, f"not a JSON message: {snippet(raw)!r}") from None
            record = message.get("record") if isinstance(message, dict) else None
            if not isinstance(record, dict):
                raise SingerProtocolError(n, f"RECORD for stream '{buffer.schema.stream}' without a 'record' object")
            decoded.append(record)
        return records_to_batch(decoded, buffer.schema)

    # -- messages ----------------------------------------------------------------------------------------
    @staticmethod
    def _stream_of(message: dict[str, Any], n: int) -> str:
        stream = message.get("stream")
        if not isinstance(stream, str) or not stream:
            raise SingerProtocolError(n, f"{message.get('type')} message without a 'stream'")
        return stream

    def _schema(self, message: dict[str, Any], n: int) -> Iterator[Event]:
        stream = self._stream_of(message, n)
        yield from self.flush(stream)
        try:
            schema = StreamSchema.from_message(message)
        except ValueError as exc:
            raise SingerProtocolError(n, f"stream '{stream}': {exc}") from None
        self.schemas[stream] = schema
        self.stats.schemas += 1
        wanted = self._columns(stream) if self._columns else None
        buffer = self._buffers[stream] = _Buffer(schema.only(wanted))
        key = orjson.dumps(stream)[1:-1]
        self._raw_buffers.pop(key, None)
        if buffer.fast or not buffer.schema.columns:
            self._raw_buffers[key] = buffer
        yield SchemaEvent(schema)

    def _record(self, message: dict[str, Any], n: int, size: int) -> Iterator[Event]:
        stream = self._stream_of(message, n)
        buffer = self._buffers.get(stream)
        if buffer is None:
            raise SingerProtocolError(n, f"RECORD for stream '{stream}' before its SCHEMA")
        record = message.get("record")
        if not isinstance(record, dict):
            raise SingerProtocolError(n, f"RECORD for stream '{stream}' without a 'record' object")
        self.stats.records[stream] = self.stats.records.get(stream, 0) + 1
        if not buffer.schema.columns:
            return
        if buffer.raw:  # keep the stream's order: what the fast path holds goes first
            yield from self.flush(stream)
        buffer.records.append(record)
        buffer.nbytes += size
        if buffer.rows >= self.batch_rows or buffer.nbytes >= self.batch_bytes:
            yield from self.flush(stream)

    def _batch(self, message: dict[str, Any], n: int) -> Iterator[Event]:
        stream = self._stream_of(message, n)
        buffer = self._buffers.get(stream)
        if buffer is None:
            raise SingerProtocolError(n, f"BATCH for stream '{stream}' before its SCHEMA")
        encoding = message.get("encoding") or {}
        fmt = str(encoding.get("format") or "").lower()
        compression = str(encoding.get("compression") or "").lower() or None
        manifest = message.get("manifest") or []
        if fmt not in ("jsonl", "parquet"):
            raise SingerProtocolError(n, f"BATCH for '{stream}' in format '{fmt}' (only jsonl and parquet are read)")
        yield from self.flush(stream)
        for url in manifest:
            path = batch_file_path(str(url), n)
            self.stats.batch_files += 1
            if fmt == "parquet":
                yield from self._parquet_file(stream, buffer, path)
            else:
                yield from self._jsonl_file(stream, buffer, path, compression, n)

    def _jsonl_file(self, stream: str, buffer: _Buffer, path: Path, compression: str | None,
                    n: int) -> Iterator[Event]:
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
                self.stats.records[stream] = self.stats.records.get(stream, 0) + 1
                if not buffer.schema.columns:
                    continue
                buffer.records.append(record)
                buffer.nbytes += len(raw)
                if len(buffer.records) >= self.batch_rows or buffer.nbytes >= self.batch_bytes:
                    yield from self.flush(stream)
        yield from self.flush(stream)

    def _parquet_file(self, stream: str, buffer: _Buffer, path: Path) -> Iterator[Event]:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        lower = {name.lower(): name for name in pf.schema_arrow.names}
        wanted = [lower[c.name.lower()] for c in buffer.schema.columns if c.name.lower() in lower]
        for batch in pf.iter_batches(batch_size=self.batch_rows, columns=wanted):
            self.stats.records[stream] = self.stats.records.get(stream, 0) + batch.num_rows
            if batch.num_rows and buffer.schema.columns:
                yield RecordsEvent(stream, batch)


def _numbered_lines(runs: Sequence[bytes], firsts: Sequence[int]) -> Iterator[tuple[bytes, int]]:
    for run, first in zip(runs, firsts, strict=True):
        yield from zip(run.split(b"\n")[:-1], range(first, first + run.count(b"\n")), strict=True)


def batch_file_path(url: str, line_no: int) -> Path:
    """A BATCH manifest entry (``file:///…`` or a plain path) → a local path."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path if parsed.scheme else url))
    raise SingerProtocolError(line_no, f"BATCH manifest entry '{parsed.scheme}://…' is not a local file "
                                       f"(only file:// batch storage is read; set the tap's batch_config "
                                       f"storage root to a local folder)")


# -- state ------------------------------------------------------------------------------------------------


def bookmarks(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-stream bookmarks of a Singer state (``{"bookmarks": {tap_stream_id: {...}}}``)."""
    marks = state.get("bookmarks") if isinstance(state, dict) else None
    return {str(k): v for k, v in marks.items() if isinstance(v, dict)} if isinstance(marks, dict) else {}
