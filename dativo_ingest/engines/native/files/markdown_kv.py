"""Native Markdown-KV source: parses ``## <id>`` / ``key: value`` documents back into Arrow batches.

Two layouts are read (chosen by a file's first non-empty line):

* Markdown-KV as the ``markdown_kv`` target writes it (``sinks/markdown_kv.py``): one document per record,
  ``## <doc id>`` then one ``key: value`` line per non-null field, JSON-quoted values unquoted here. Parsed
  columnar (Arrow compute over the file's lines, a chunk of whole documents at a time: bounded memory).
* A front-matter document, as in the original fixture ``seeds/markdown_kv/sample_doc.md``: a ``---`` block of
  ``key: value`` lines, then sections whose ``- **key**: value`` bullets are more fields; headings and prose are
  not data. The whole file is one record.

Every column is text (binary fields: base64-decoded bytes); the stage casts to the asset's types. A field of the
asset named ``doc_id`` that no document sets gets the ``## <id>`` heading. Anything else is a one-line error
naming ``file:line``. Incremental like the csv source: an unchanged file (size, mtime) is skipped; a checkpoint
follows each file.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.engines.native.files.csv import CsvFile, read_changed_files
from dativo_ingest.errors import SourceError
from dativo_ingest.formats.markdown_kv import DOC_PREFIX, parse_key, unquote
from dativo_ingest.stream import Batch, Message

log = logging.getLogger(__name__)

DOC_ID_FIELD = "doc_id"
CHUNK_BYTES = 8 << 20
_KV = r"^(?P<key>[^\"].*?): (?P<value>.*)$"
_BULLET = re.compile(r"^\s*[-*+]\s+\*\*(?P<key>[^*]+)\*\*\s*:\s?(?P<value>.*)$")


def read_markdown_kv(
    files: Sequence[CsvFile],
    *,
    fields: Sequence[tuple[str, pa.DataType]],
    state: dict[str, dict[str, Any]],
    skip_unchanged: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Message]:
    """Yield batches (text columns), and a checkpoint after each file (state as the csv source keeps it)."""
    binary = {n.lower() for n, t in fields if pa.types.is_binary(t) or pa.types.is_large_binary(t)}
    want_doc_id = any(n == DOC_ID_FIELD for n, _ in fields)

    def read_one(file: CsvFile) -> Iterator[Message]:
        for data in _read_file(file, chunk_bytes, want_doc_id):
            yield Batch(file.stream, _decode_binary(data, binary, file.key), origin=file.key)

    return read_changed_files(files, state, skip_unchanged, read_one)


def _read_file(file: CsvFile, chunk_bytes: int, want_doc_id: bool) -> Iterator[pa.RecordBatch]:
    where = file.key
    with open(file.path, "rb") as fh:
        head = fh.read(chunk_bytes)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        stripped = head.lstrip()
        if not stripped:
            log.warning("%s has no documents", where)
            return
        first_line = head[: len(head) - len(stripped)].count(b"\n") + 1
        if stripped.startswith(b"---"):
            yield _front_matter_record(where, _text(head + fh.read(), where))
            return
        if not stripped.startswith(DOC_PREFIX.encode()):
            line = stripped.split(b"\n", 1)[0][:60].decode("utf-8", "replace")
            raise SourceError(f"{where}:{first_line}: not Markdown-KV: expected '## <id>' (one document per "
                              f"record) or a '---' front-matter block, got {line!r}")
        carry, line_no = head, 1
        while True:
            more = fh.read(chunk_bytes)
            data = carry + more
            cut = len(data) if not more else data.rfind(b"\n" + DOC_PREFIX.encode()) + 1
            if cut <= 0:  # one document bigger than a chunk: read on
                carry = data
                continue
            if data[:cut].strip():
                yield _parse_documents(_text(data[:cut], where), where, line_no, want_doc_id)
            line_no += data[:cut].count(b"\n")
            carry = data[cut:]
            if not more:
                return


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{where}: not UTF-8 ({exc.reason} at byte {exc.start}); Markdown-KV is UTF-8") from None


def _parse_documents(text: str, where: str, first_line: int, want_doc_id: bool) -> pa.RecordBatch:
    """Whole documents (``text`` starts with ``## ``) into one batch; columnar, Python only for quoted keys."""
    lines = pc.list_flatten(pc.split_pattern(pa.array([text], pa.string()), "\n"))
    heading = pc.starts_with(lines, DOC_PREFIX)
    doc = pc.subtract(pc.cumulative_sum(pc.cast(heading, pa.int64())), 1)
    line_index = pc.subtract(pc.cumulative_sum(pc.cast(pc.is_valid(lines), pa.int64())), 1)  # 0 … n-1
    is_kv = pc.and_(pc.not_equal(pc.utf8_length(lines), 0), pc.invert(heading))
    kv_lines, kv_doc, kv_line = (pc.filter(a, is_kv) for a in (lines, doc, line_index))
    parts = pc.extract_regex(kv_lines, _KV)
    keys, values = pc.struct_field(parts, "key"), pc.struct_field(parts, "value")
    quoted = pc.starts_with(kv_lines, '"')
    bad = pc.and_(pc.is_null(keys), pc.invert(quoted))
    if pc.any(bad).as_py():
        i = pc.index(bad, True).as_py()
        raise SourceError(f"{where}:{first_line + kv_line[i].as_py()}: not a 'key: value' line: "
                          f"{kv_lines[i].as_py()[:60]!r}")
    if pc.any(quoted).as_py():  # keys written as JSON strings (they hold ':', start with '#' …): rare
        keys, values = _quoted_keys(kv_lines, quoted, keys, values, kv_line, where, first_line)
    ids = pc.utf8_slice_codeunits(pc.filter(lines, heading), len(DOC_PREFIX))
    all_docs = pc.filter(doc, heading)  # 0 … n_docs-1
    columns: dict[str, pa.Array] = {}
    for key in pc.unique(keys).to_pylist():
        mask = pc.equal(keys, key)
        key_docs = pc.filter(kv_doc, mask)
        if len(pc.unique(key_docs)) != len(key_docs):
            dup = pc.filter(kv_line, mask).to_pylist()[_first_duplicate(key_docs.to_pylist())]
            raise SourceError(f"{where}:{first_line + dup}: key {key!r} appears twice in one document")
        positions = pc.index_in(all_docs, value_set=key_docs)
        columns[key] = unquote(pc.take(pc.filter(values, mask), positions))
    if want_doc_id and DOC_ID_FIELD not in columns:
        columns[DOC_ID_FIELD] = unquote(ids)
    if not columns:  # documents without fields: keep their count
        columns[DOC_ID_FIELD] = unquote(ids)
    return pa.RecordBatch.from_pydict(columns)


def _first_duplicate(values: list[int]) -> int:
    seen: set[int] = set()
    for i, v in enumerate(values):
        if v in seen:
            return i
        seen.add(v)
    return 0


def _quoted_keys(kv_lines: pa.Array, quoted: pa.Array, keys: pa.Array, values: pa.Array, kv_line: pa.Array,
                 where: str, first_line: int) -> tuple[pa.Array, pa.Array]:
    parsed: list[tuple[str, str]] = []
    for text, line in zip(pc.filter(kv_lines, quoted).to_pylist(), pc.filter(kv_line, quoted).to_pylist(),
                          strict=True):
        try:
            parsed.append(parse_key(text))
        except ValueError as exc:
            raise SourceError(f"{where}:{first_line + line}: {exc}") from None
    new_keys = pa.array([k for k, _ in parsed], pa.string())
    new_values = pa.array([v for _, v in parsed], pa.string())
    return pc.replace_with_mask(keys, quoted, new_keys), pc.replace_with_mask(values, quoted, new_values)


def _front_matter_record(where: str, text: str) -> pa.RecordBatch:
    """A front-matter document (the original fixture's layout) as one record."""
    record: dict[str, str] = {}
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip())
    in_front = True
    for i, raw in enumerate(lines[start + 1:], start=start + 2):
        line = raw.rstrip("\r")
        if in_front:
            if line.strip() == "---":
                in_front = False
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep or not key.strip():
                raise SourceError(f"{where}:{i}: not a 'key: value' line in the front matter: {line[:60]!r}")
        else:
            m = _BULLET.match(line)
            if not m:
                continue  # headings and prose are not data
            key, value = m.group("key"), m.group("value")
        key, value = key.strip(), value.strip()
        if in_front and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key in record:
            raise SourceError(f"{where}:{i}: key {key!r} appears twice in the document")
        record[key] = value
    if in_front:
        raise SourceError(f"{where}:{start + 1}: the '---' front-matter block is never closed")
    return pa.RecordBatch.from_pydict({k: pa.array([v], pa.string()) for k, v in record.items()})


def _decode_binary(data: pa.RecordBatch, binary: set[str], where: str) -> pa.RecordBatch:
    """Binary fields are written as base64: give the stage bytes (it casts text to BLOB differently)."""
    names = [n for n in data.schema.names if n.lower() in binary]
    if not names:
        return data
    arrays = list(data.columns)
    for name in names:
        i = data.schema.get_field_index(name)
        try:
            decoded = [None if v is None else base64.b64decode(v, validate=True) for v in arrays[i].to_pylist()]
        except ValueError:
            raise SourceError(f"{where}: field {name!r} holds a value that is not base64 "
                              f"(Markdown-KV writes binary as base64)") from None
        arrays[i] = pa.array(decoded, pa.binary())
    return pa.RecordBatch.from_arrays(arrays, names=data.schema.names)
