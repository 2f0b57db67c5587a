"""JSON records → Arrow record batches, typed by the stream's JSON Schema (the mapping: ``engines.common.schema``).

Both JSON-lines engines use it: Airbyte (``{"type": "RECORD", "record": {"stream": …, "data": {…}}}``) and Singer
(``{"type": "RECORD", "stream": …, "record": {…}}``); an engine says where the record sits in its message
(``path``) and how to decode one line when the fast path cannot (``record_of``, raising its own protocol error).

The fast path hands runs of raw RECORD lines to Arrow's JSON reader in one call: no Python object per row. It
gives up (and the lines are decoded one by one, ``to_batch``) when a value does not fit its declared type, a line
is not JSON, or a line is not a record. ``PendingLines`` gathers one stream's lines up to a batch's size.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from dativo_ingest.engines.common.schema import (
    ARROW,
    AUTO,
    BOOL,
    INT,
    JSON,
    NUMBER,
    STRING,
    TEMPORAL,
    TIMESTAMP_TZ,
    column_kind,
    explicit_type,
)

BATCH_ROWS = 50_000
BATCH_BYTES = 32 << 20
#: bytes of input Arrow's JSON reader parses per block (blocks are parsed in parallel)
READ_BLOCK = 8 << 20
#: input bytes from which a batch is parsed as two halves at once
SPLIT_BYTES = 4 << 20
#: the kinds Arrow's JSON reader is told exactly; with only these, undeclared keys are skipped unparsed
_EXACT = frozenset({INT, NUMBER, BOOL, STRING, *TEMPORAL})
_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                   ValueError)

#: decodes one RECORD line (its number when known) into the record's data, or raises the engine's protocol error
RecordOf = Callable[[bytes, "int | None"], dict[str, Any]]


class StreamColumns:
    """The columns one stream's records become: one per declared property, or per name asked for.

    ``names``: the asset's fields, matched to the schema's properties ignoring case (a name the schema lacks
    still becomes a column, typed from its values); None: every property of the schema.
    """

    def __init__(self, json_schema: dict[str, Any], names: Sequence[str] | None = None, *,
                 path: Sequence[str], record_of: RecordOf) -> None:
        props = json_schema.get("properties") if isinstance(json_schema.get("properties"), dict) else {}
        by_lower = {k.lower(): k for k in props}
        if names is None:
            keys = list(props)
        else:
            keys = [name if name in props else by_lower.get(name.lower(), name) for name in names]
        self.keys = list(dict.fromkeys(keys))
        self.kinds = [column_kind(props.get(k)) for k in self.keys]
        self.path = tuple(path)
        self.record_of = record_of
        exact = all(kind in _EXACT and key in props for key, kind in zip(self.keys, self.kinds, strict=True))
        declared = props if not exact else {k: props[k] for k in self.keys}
        data = pa.struct([(k, t) for k, v in declared.items() if (t := explicit_type(v)) is not None])
        for name in reversed(self.path[1:]):
            data = pa.struct([(name, data)])
        #: the message as Arrow's JSON reader is told to read it: the record's declared columns typed, and, unless
        #: every column asked for is declared exactly, the rest inferred
        self.message_schema = pa.schema([(self.path[0], data)])
        self.unexpected = "ignore" if exact else "infer"
        self._duck = threading.local()

    def from_lines(self, chunks: Sequence[bytes], rows: int | None = None,
                   firsts: Sequence[int] | None = None) -> pa.RecordBatch:
        """Runs of RECORD lines (each run ending in a newline) → one batch: parsed by Arrow in one call, else one
        line at a time. ``rows``: how many lines they hold (a check of the fast path); ``firsts``: the number of
        each run's first line, for the protocol error naming a bad line."""
        batch = self._fast(chunks, rows)
        if batch is not None:
            return batch
        records: list[dict[str, Any]] = []
        for line, number in numbered_lines(chunks, firsts):
            if line.strip():
                records.append(self.record_of(line, number))
        return self.to_batch(records)

    def _fast(self, chunks: Sequence[bytes], rows: int | None) -> pa.RecordBatch | None:
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        data = pa.py_buffer(raw)  # sliced below without a copy
        batch = None
        if data.size >= SPLIT_BYTES:  # Arrow's JSON reader keeps to one core: two halves at once use both
            cut = raw.find(b"\n", data.size // 2) + 1
            if 0 < cut < data.size:
                first, second = _halves().map(self._parse, (data.slice(0, cut), data.slice(cut)))
                if first is not None and second is not None and first.schema.equals(second.schema):
                    batch = pa.concat_batches([first, second])
        if batch is None:
            batch = self._parse(data)
        if batch is None or (rows is not None and batch.num_rows != rows):
            return None
        return batch

    def _parse(self, data: pa.Buffer) -> pa.RecordBatch | None:
        """Lines of RECORDs parsed by Arrow and shaped into this stream's columns; None: the fast path cannot."""
        try:
            table = pj.read_json(pa.BufferReader(data),
                                 read_options=pj.ReadOptions(block_size=READ_BLOCK, use_threads=False),
                                 parse_options=pj.ParseOptions(explicit_schema=self.message_schema,
                                                               unexpected_field_behavior=self.unexpected))
            record: pa.Array = table.column(self.path[0]).combine_chunks()
            for name in self.path[1:]:
                if record.null_count:
                    return None
                record = record.field(name)
            if record.null_count:  # a message without its record: the line-by-line pass names it
                return None
            return pa.RecordBatch.from_arrays([self._finish(record, key, kind)
                                               for key, kind in zip(self.keys, self.kinds, strict=True)],
                                              names=self.keys)
        except _FallBack:
            return None
        except _CONVERT_ERRORS:
            return None

    def _finish(self, data: pa.StructArray, key: str, kind: str) -> pa.Array:
        """One column of the Arrow-parsed records, in the shape ``to_array`` gives it."""
        if data.type.get_field_index(key) < 0:
            return pa.nulls(len(data), ARROW[kind])
        array = data.field(key)
        parsed = array.type
        if kind in TEMPORAL:
            return temporal(array.cast(pa.string()), kind)
        if kind in (JSON, AUTO) and (pa.types.is_nested(parsed) or pa.types.is_null(parsed)):
            return self._json_text(array)
        if kind == JSON:
            raise _FallBack
        if kind == NUMBER:
            if pa.types.is_floating(parsed) and _beyond_doubles(array):  # the text held a bigger integer
                raise _FallBack
            return number(array)
        if kind == AUTO and not (pa.types.is_string(parsed) or pa.types.is_integer(parsed)
                                 or pa.types.is_floating(parsed) or pa.types.is_boolean(parsed)):
            raise _FallBack
        return array

    def _json_text(self, array: pa.Array) -> pa.Array:
        if pa.types.is_null(array.type):
            return array.cast(pa.string())
        duck = getattr(self._duck, "con", None)
        if duck is None:  # one connection per thread: the halves of a batch are shaped at the same time
            import duckdb

            duck = self._duck.con = duckdb.connect(config={"threads": 1})
        nested = pa.table({"v": array})  # noqa: F841 - read by name in the SQL below
        return duck.sql("SELECT to_json(v)::VARCHAR AS v FROM nested").to_arrow_table().column(0).combine_chunks()

    def to_batch(self, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
        """Decoded records → a batch of these columns (a column whose values do not fit its kind becomes text)."""
        arrays = [to_array([row.get(key) for row in rows], kind)
                  for key, kind in zip(self.keys, self.kinds, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, names=self.keys)


def numbered_lines(chunks: Sequence[bytes], firsts: Sequence[int] | None) -> Iterator[tuple[bytes, int | None]]:
    """The lines of runs of lines, each with its number (None when ``firsts`` is not known)."""
    for i, chunk in enumerate(chunks):
        lines = chunk.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        first = firsts[i] if firsts is not None else None
        for j, line in enumerate(lines):
            yield line, (first + j if first is not None else None)


class PendingLines:
    """One stream's RECORD lines not yet made into a batch, up to ``batch_rows`` rows or ``batch_bytes`` of input.

    ``observe``: called with each run of lines as it comes (``test-connector`` checks a sample of records there).
    """

    def __init__(self, columns: StreamColumns, *, batch_rows: int = BATCH_ROWS, batch_bytes: int = BATCH_BYTES,
                 observe: Callable[[bytes], None] | None = None) -> None:
        self.columns = columns
        self.batch_rows = batch_rows
        self.batch_bytes = batch_bytes
        self.observe = observe
        self.chunks: list[bytes] = []
        self.firsts: list[int] = []
        self.rows = 0
        self.nbytes = 0

    def add(self, chunk: bytes, rows: int, first_line: int = 0) -> bool:
        """A run of ``rows`` lines ending in a newline (``first_line``: its first line's number, 0 when not
        counted); True when the batch is full (``seal`` it)."""
        if self.observe is not None:
            self.observe(chunk)
        self.chunks.append(chunk)
        self.firsts.append(first_line)
        self.rows += rows
        self.nbytes += len(chunk)
        return self.rows >= self.batch_rows or self.nbytes >= self.batch_bytes

    def seal(self) -> list[pa.RecordBatch]:
        """The lines so far as batches of at most ``batch_rows`` rows (a run may overshoot); then empty."""
        if not self.chunks:
            return []
        numbered = self.firsts if all(self.firsts) else None
        batch = self.columns.from_lines(self.chunks, self.rows, numbered)
        self.chunks, self.firsts, self.rows, self.nbytes = [], [], 0, 0
        if batch.num_rows <= self.batch_rows:
            return [batch]
        return [batch.slice(offset, self.batch_rows) for offset in range(0, batch.num_rows, self.batch_rows)]


def to_text(values: list[Any]) -> pa.Array:
    """Strings stay as they are; anything else becomes its JSON text (``true``, ``1.5``, ``{"a": 1}``)."""
    return pa.array([v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
                    pa.string())


def to_array(values: list[Any], kind: str) -> pa.Array:
    """Decoded values of one column → an array of its kind, or text when they do not fit it."""
    try:
        if kind == INT:  # inferred first: pa.array(..., int64) would truncate 1.5 to 1
            array = pa.array(values)
            if pa.types.is_integer(array.type) or pa.types.is_null(array.type):
                return array.cast(pa.int64())
            return to_text(values)
        if kind == NUMBER:
            array = pa.array(values)
            if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_null(array.type):
                return number(array)
            return to_text(values)
        if kind == BOOL:
            array = pa.array(values)
            if pa.types.is_boolean(array.type) or pa.types.is_null(array.type):
                return array.cast(pa.bool_())
            return to_text(values)
        if kind == STRING:
            return pa.array(values, pa.string())
        if kind == JSON:
            return pa.array([None if v is None else orjson.dumps(v).decode() for v in values], pa.string())
        if kind in TEMPORAL:
            return temporal(pa.array(values, pa.string()), kind)
        array = pa.array(values)  # AUTO
        if pa.types.is_nested(array.type) or pa.types.is_null(array.type):
            return to_text(values)
        return array
    except _CONVERT_ERRORS:
        return to_text(values)


def number(array: pa.Array) -> pa.Array:
    """A ``number`` column: int64 when every value is a whole number an int64 and a double both hold exactly
    (below 2**53), else float64."""
    if pa.types.is_integer(array.type):
        return array.cast(pa.int64())
    array = array.cast(pa.float64())
    if array.null_count == len(array):
        return array
    if pc.all(pc.equal(array, pc.floor(array))).as_py() and not _beyond_doubles(array):
        return array.cast(pa.int64())
    return array


def _beyond_doubles(array: pa.Array) -> bool:
    """Whether a double column holds a whole number too big for a double to be exact (its text may be exact)."""
    return bool(pc.any(pc.greater_equal(pc.abs(array), _EXACT_DOUBLE)).as_py())


_EXACT_DOUBLE = float(2 ** 53)


@functools.cache
def _halves() -> ThreadPoolExecutor:
    """The two threads parsing the halves of a big batch (Arrow's JSON parser releases the GIL)."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="dativo-json")


class _FallBack(Exception):
    """The Arrow-parsed batch has a column the fast path cannot shape: read the batch again in Python."""


def temporal(text: pa.Array, kind: str) -> pa.Array:
    """ISO 8601 text → the kind's Arrow type (a date-time without an offset is UTC); the text itself when a value
    does not parse (the stage casts it, and quarantines what does not cast)."""
    try:
        return pc.cast(text, ARROW[kind])
    except _CONVERT_ERRORS:
        pass
    if kind == TIMESTAMP_TZ:
        try:
            has_offset = pc.match_substring_regex(text, r"(Z|[+-]\d\d(:?\d\d)?)$")
            utc = pc.if_else(has_offset, text, pc.binary_join_element_wise(text, pa.scalar("Z"), ""))
            return pc.cast(utc, ARROW[kind])
        except _CONVERT_ERRORS:
            pass
    return text


__all__ = ["BATCH_BYTES", "BATCH_ROWS", "PendingLines", "RecordOf", "StreamColumns", "numbered_lines", "temporal",
           "to_array", "to_text"]
