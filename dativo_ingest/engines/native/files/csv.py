"""Native CSV source: streams Arrow batches with pyarrow's incremental reader.

Every column is read as text; the stage casts to the asset's types in DuckDB, so a bad value is a
row-level violation rather than a failed file. Never the whole file in memory: one block at a time.
Incremental by ``file_modified_time``: a file whose size and modification time are those already
committed is skipped. A checkpoint follows each file.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from dativo_ingest.config.local_files import LocalFileAccess
from dativo_ingest.config.models import JobSource
from dativo_ingest.errors import ConfigError, SourceError
from dativo_ingest.stream import Batch, Checkpoint, Message, Rejected

log = logging.getLogger(__name__)

DEFAULT_NULLS = ("", "NULL", "null")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class CsvOptions:
    """How CSV files are read: delimiter, quote, encoding, header, null values, rows to skip, block size."""

    delimiter: str = ","
    quote_char: str | None = '"'
    encoding: str = "utf-8"
    header: bool = True
    null_values: tuple[str, ...] = DEFAULT_NULLS
    skip_rows: int = 0
    #: bytes parsed at a time, and the longest row; Arrow reads ~32 blocks ahead, so this bounds memory (~64 MB)
    block_size: int = 2 << 20

    @classmethod
    def from_layers(cls, *layers: dict[str, Any] | None) -> CsvOptions:
        """Merge option dicts, later layers win; unknown keys are ignored (they belong to other parts)."""
        known = {f.name for f in fields(cls)}
        aliases = {"quotechar": "quote_char", "quote": "quote_char", "sep": "delimiter", "separator": "delimiter",
                   "null_markers": "null_values", "nulls": "null_values", "has_header": "header"}
        values: dict[str, Any] = {}
        for layer in layers:
            for key, value in (layer or {}).items():
                key = aliases.get(key, key)
                if key in known and value is not None:
                    values[key] = value
        if "null_values" in values:
            nv = values["null_values"]
            values["null_values"] = tuple([nv] if isinstance(nv, str) else nv)
        if "header" in values and isinstance(values["header"], str):
            values["header"] = values["header"].strip().lower() in ("true", "yes", "1")
        for key in ("skip_rows", "block_size"):
            if key in values:
                values[key] = int(values[key])
        if values.get("delimiter") in ("\\t", "tab"):
            values["delimiter"] = "\t"
        opts = cls(**values)
        if len(opts.delimiter) != 1:
            raise ConfigError(None, f"delimiter must be one character, got {opts.delimiter!r}",
                              field="source.options.delimiter", fix="e.g. ',' or '|' or '\\t'")
        return opts


@dataclass
class CsvFile:
    """One CSV file to read, and the stream its rows belong to."""

    stream: str
    path: Path
    #: the key the file has in state: relative to the project root when inside it
    key: str
    options: CsvOptions
    field_path: str = ""


@dataclass
class _Rejections:
    path: str
    stream: str
    quote_char: str | None = '"'
    items: list[Rejected] = field(default_factory=list)
    #: a file-level error (an unclosed quote swallowing the rest of the file): no row can be trusted
    fatal: str | None = None

    def __call__(self, row: Any) -> str:
        text = row.text or ""
        body = text.rstrip("\r\n")
        if self.quote_char and "\n" in body and body.count(self.quote_char) % 2 == 1 and self.fatal is None:
            lines = body.count("\n") + 1
            self.fatal = (f"{self.path}:{row.number}: unclosed quote: the quoted field that starts on line "
                          f"{row.number} runs on for {lines} lines to the end of the file; nothing committed "
                          f"(close the quote, or set quote_char if the file uses another one)")
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        self.items.append(Rejected(self.stream, self.path, row.number, reason, text))
        return "skip"

    def raise_if_fatal(self) -> None:
        if self.fatal:
            raise SourceError(self.fatal)


def _state_key(path: Path, project_root: Path) -> str:
    try:
        return str(path.relative_to(project_root))
    except ValueError:
        return str(path)


def resolve_files(source: JobSource, *, project_root: Path, default_stream: str,
                  access: LocalFileAccess | None = None) -> list[CsvFile]:
    """The files a job reads: ``source.files[{path, object, <csv options>}]`` (globs allowed) or ``source.path``;
    each file (a glob's matches, a symlink's target) must pass ``access`` (never secrets; cloud: data/ only)."""
    base = CsvOptions.from_layers(source.engine.options if source.engine else None, source.options,
                                  source.as_mapping())
    entries = source.file_entries()
    if not entries:
        raise ConfigError(None, "no files to read", field="source.files",
                          fix="add source.files: [{path: data/x.csv, object: x}]")
    out: list[CsvFile] = []
    for i, file in enumerate(entries):
        field_path = source.file_field(i)
        if not file.path:
            raise ConfigError(None, "has no path", field=f"source.files[{i}]",
                              fix="the native csv engine reads local files: give path: …")
        entry = file.model_dump(exclude_none=True)
        opts = CsvOptions.from_layers(base.__dict__, entry.get("options"), entry)
        raw = Path(os.path.expanduser(file.path))
        pattern = raw if raw.is_absolute() else project_root / raw
        if _GLOB_CHARS & set(str(raw)):
            matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
            if not matches:
                log.warning("%s: pattern %s matched no file", field_path, raw)
        else:
            if not pattern.is_file():
                raise SourceError(f"{field_path}: file not found: {pattern} "
                                  f"(paths are relative to the project root {project_root})")
            matches = [pattern]
        stream = str(file.object or default_stream)
        for path in matches:
            if access is not None:
                access.check(path, where=None, field=field_path)
            out.append(CsvFile(stream, path, _state_key(path, project_root), opts, field_path))
    return out


def _encoding_for(path: Path, encoding: str) -> str:
    """Honour a byte-order mark: ``utf-8`` + BOM reads as utf-8-sig, ``utf-16-le/be`` + BOM as utf-16."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    enc = encoding.lower().replace("_", "-")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") and enc.startswith("utf-16"):
        return "utf-16"
    if enc in ("utf-8", "utf8", "utf-8-sig"):
        if b"\x00" in head:
            raise SourceError(f"{path}: has NUL bytes, so it is not {encoding} (likely UTF-16); "
                              f"set source.engine.options.encoding: utf-16")
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
    return encoding


def _open(file: CsvFile, column_names: Sequence[str], invalid: _Rejections | None,
          string_columns: Sequence[str] | None) -> pacsv.CSVStreamingReader:
    o = file.options
    read = pacsv.ReadOptions(
        use_threads=False,  # keeps row numbers for the invalid-row handler
        block_size=o.block_size,
        skip_rows=o.skip_rows,
        column_names=None if o.header else list(column_names),
        encoding=_encoding_for(file.path, o.encoding),
    )
    parse = pacsv.ParseOptions(
        delimiter=o.delimiter,
        quote_char=o.quote_char if o.quote_char else False,
        invalid_row_handler=invalid,
    )
    convert = pacsv.ConvertOptions(
        null_values=list(o.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        column_types={c: pa.string() for c in string_columns} if string_columns else None,
    )
    return pacsv.open_csv(file.path, read_options=read, parse_options=parse, convert_options=convert)


def _header(file: CsvFile, column_names: Sequence[str]) -> list[str]:
    if not file.options.header:
        return list(column_names)
    small = CsvFile(file.stream, file.path, file.key, CsvOptions(**{**file.options.__dict__, "block_size": 1 << 16}))
    reader = _open(small, column_names, _Rejections(str(file.path), file.stream, None), None)
    return list(reader.schema.names)


def file_fingerprint(path: Path) -> dict[str, int]:
    """What says a file changed: its size and modified time."""
    st = path.stat()
    return {"mtime_ns": st.st_mtime_ns, "size": st.st_size}


def read_csv(
    files: Sequence[CsvFile],
    *,
    column_names: Sequence[str],
    state: dict[str, dict[str, Any]],
    skip_unchanged: bool = True,
) -> Iterator[Message]:
    """Yield batches (all columns text), parse rejections, and a checkpoint after each file.

    ``state`` maps stream → that stream's committed state ({"files": {key: fingerprint}}).
    """
    def read_one(file: CsvFile) -> Iterator[Message]:
        if file.path.stat().st_size == 0:
            log.warning("%s is empty", file.key)
            return iter(())
        return _read_one(file, column_names)

    return read_changed_files(files, state, skip_unchanged, read_one)


def read_changed_files(
    files: Sequence[CsvFile],
    state: dict[str, dict[str, Any]],
    skip_unchanged: bool,
    read_one: Callable[[CsvFile], Iterator[Message]],
) -> Iterator[Message]:
    """``read_one`` each file whose fingerprint (size, mtime) differs from the committed one, then a checkpoint
    holding the stream's file fingerprints. ``state`` maps stream → {"files": {key: fingerprint}}."""
    seen: dict[str, dict[str, Any]] = {s: dict((st or {}).get("files") or {}) for s, st in state.items()}
    for file in files:
        files_state = seen.setdefault(file.stream, {})
        fingerprint = file_fingerprint(file.path)
        if skip_unchanged and files_state.get(file.key) == fingerprint:
            log.info("skipping unchanged file %s", file.key)
            continue
        yield from read_one(file)
        files_state[file.key] = fingerprint
        yield Checkpoint(file.stream, {"files": dict(files_state)})


def _read_one(file: CsvFile, column_names: Sequence[str]) -> Iterator[Message]:
    where = str(file.key)
    try:
        names = _header(file, column_names)
        seen: dict[str, str] = {}
        for name in names:
            if name.lower() in seen:
                raise SourceError(f"{where}: the header names the column '{name}' twice ('{seen[name.lower()]}' and "
                                  f"'{name}'; columns are matched to the asset's fields ignoring case) — rename "
                                  f"one of them")
            seen[name.lower()] = name
        rejections = _Rejections(where, file.stream, file.options.quote_char)
        reader = _open(file, column_names, rejections, names)
        for batch in reader:
            rejections.raise_if_fatal()
            if rejections.items:
                yield from rejections.items
                rejections.items.clear()
            yield Batch(file.stream, batch, origin=where)
        rejections.raise_if_fatal()
        yield from rejections.items
    except UnicodeDecodeError as exc:
        raise SourceError(f"{where}: cannot decode as {file.options.encoding} ({exc.reason} at byte {exc.start}); "
                          f"set source.engine.options.encoding (utf-8, utf-8-sig, utf-16, latin-1)") from None
    except pa.ArrowInvalid as exc:
        msg = str(exc).splitlines()[0]
        if "Empty CSV file" in msg:
            log.warning("%s has no rows", where)
            return
        if "straddl" in msg:
            raise SourceError(f"{where}: a row is longer than the block size ({file.options.block_size} bytes), or a "
                              f"quote is never closed; set source.options.block_size to more than the longest row "
                              f"(bytes), or fix the quote") from None
        raise SourceError(f"{where}: cannot parse CSV: {msg} (check delimiter, quote_char and encoding "
                          f"in source.engine.options)") from None
