"""Native object-storage sources (``s3``, ``minio``, ``azure_blob``): CSV, Parquet and JSON-lines objects under a
prefix, matched by globs, streamed into Arrow one object at a time.

Incremental like local files (``file_modified_time``): each object's fingerprint (last-modified time and size,
and on S3 its ETag) is committed after it is read; an object whose fingerprint is unchanged is skipped on the next
run. (pyarrow's Azure listing carries no ETag: there, last-modified and size.) CSV columns are read as
text (the stage casts them); Parquet and JSON-lines keep their own types for the stage to cast.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from dativo_ingest.config.models import JobSource
from dativo_ingest.engines.native.files.csv import CsvOptions
from dativo_ingest.errors import ConfigError, InfrastructureError, SourceError
from dativo_ingest.storage.stores import ObjectStore, make_store, store_block
from dativo_ingest.stream import Batch, Checkpoint, Message

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class StoredObject:
    """One object to read: its key (under the store's bucket), format, stream and fingerprint."""

    stream: str
    key: str
    format: str
    options: CsvOptions
    fingerprint: dict[str, Any]


def source_store(connector: str, connection: dict[str, Any], job_path: Any = None) -> ObjectStore:
    """The store a job reads from: its ``source.connection`` (flat keys, or a nested ``s3``/``azure_blob`` block)."""
    return make_store(connector, store_block(connection, connector), "source.connection", job_path)


def _format(key: str, given: Any, field: str) -> str:
    if given:
        fmt = str(given).lower()
        if fmt not in set(FORMATS.values()):
            raise ConfigError(None, f"unknown format '{given}'", field=field, fix="use csv, parquet or jsonl")
        return fmt
    suffix = posixpath.splitext(key.removesuffix(".gz"))[1].lower()
    if suffix not in FORMATS:
        raise ConfigError(None, f"cannot tell the format of '{key}'", field=field,
                          fix="name objects .csv, .parquet or .jsonl, or set format: csv | parquet | jsonl")
    return FORMATS[suffix]


def _listing(store: ObjectStore, pattern: str) -> list[tuple[str, dict[str, Any]]]:
    """``(key under the prefix, fingerprint)`` of the objects matching ``pattern`` (a glob relative to the prefix),
    by key. The fingerprint is the object's last-modified time and size, and on S3 its ETag too."""
    fixed = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
    folder = posixpath.dirname(fixed) if "/" in fixed else ""
    try:
        found = _s3_listing(store, folder) if store.kind == "s3" else _fs_listing(store, folder)
    except OSError as exc:
        raise InfrastructureError(f"cannot list {store.describe()}: {' '.join(str(exc).split())[:200]} "
                                  f"(check the source's connection and credentials)") from None
    return sorted((key, fp) for key, fp in found if fnmatch.fnmatchcase(key, pattern))


def _fs_listing(store: ObjectStore, folder: str) -> Iterator[tuple[str, dict[str, Any]]]:
    base = store.fs_path(folder) if folder else store.fs_path()
    root = store.fs_path().rstrip("/") + "/"
    for info in store.filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            yield info.path.removeprefix(root), {"mtime_ns": int(info.mtime_ns or 0), "size": int(info.size or 0)}


def _s3_listing(store: ObjectStore, folder: str) -> Iterator[tuple[str, dict[str, Any]]]:
    from botocore.exceptions import BotoCoreError, ClientError

    from dativo_ingest.sinks.checks import s3_client

    prefix = store.key(folder) if folder else store.prefix
    prefix = prefix + "/" if prefix else ""
    pages = s3_client(store).get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    try:
        for page in pages:
            for item in page.get("Contents") or []:
                if item["Key"].endswith("/"):
                    continue
                rel = item["Key"][len(store.prefix) + 1:] if store.prefix else item["Key"]
                yield rel, {"etag": str(item.get("ETag") or "").strip('"'), "size": int(item.get("Size") or 0),
                            "mtime_ns": int(item["LastModified"].timestamp() * 1e9)}
    except (BotoCoreError, ClientError) as exc:
        raise OSError(str(exc)) from None


def resolve_objects(store: ObjectStore, source: JobSource, *, default_stream: str) -> list[StoredObject]:
    """``source.files[{path: <glob under the prefix>, object, format, <csv options>}]`` as a list of objects."""
    base = CsvOptions.from_layers(source.options, source.as_mapping())
    entries = source.file_entries()
    if not entries:
        raise ConfigError(None, "no objects to read", field="source.files",
                          fix="add source.files: [{path: 'raw/*.csv', object: x}] (paths under the prefix)")
    out: list[StoredObject] = []
    for i, file in enumerate(entries):
        entry = file.model_dump(exclude_none=True)
        pattern = str(file.path or "").lstrip("/")
        if not pattern:
            raise ConfigError(None, "has no path", field=f"source.files[{i}]", fix="e.g. path: 'raw/*.csv'")
        found = _listing(store, pattern)
        if not found and not _GLOB_CHARS & set(pattern):
            raise SourceError(f"source.files[{i}].path: no object '{pattern}' in {store.describe()}")
        if not found:
            log.warning("source.files[%d].path: pattern %s matched no object in %s", i, pattern, store.describe())
        opts = CsvOptions.from_layers(base.__dict__, entry.get("options"), entry)
        for key, fingerprint in found:
            fmt = _format(key, entry.get("format") or (source.model_extra or {}).get("format"),
                          f"source.files[{i}].format")
            out.append(StoredObject(str(file.object or default_stream), key, fmt, opts, fingerprint))
    return out


def read_objects(store: ObjectStore, objects: list[StoredObject], *, state: dict[str, dict[str, Any]],
                 skip_unchanged: bool = True) -> Iterator[Message]:
    """Batches of each changed object, then a checkpoint holding its stream's object fingerprints."""
    seen: dict[str, dict[str, Any]] = {s: dict((st or {}).get("files") or {}) for s, st in state.items()}
    for obj in objects:
        files = seen.setdefault(obj.stream, {})
        if skip_unchanged and files.get(obj.key) == obj.fingerprint:
            log.info("skipping unchanged object %s", obj.key)
            continue
        if obj.fingerprint["size"] == 0:
            log.warning("%s is empty", obj.key)
        else:
            yield from _read_one(store, obj)
        files[obj.key] = obj.fingerprint
        yield Checkpoint(obj.stream, {"files": dict(files)})


def _read_one(store: ObjectStore, obj: StoredObject) -> Iterator[Message]:
    path = store.fs_path(obj.key)
    where = f"{store.describe()}: {obj.key}"
    fs = store.filesystem
    try:
        if obj.format == "parquet":
            with fs.open_input_file(path) as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=65_536):
                    yield Batch(obj.stream, batch, origin=obj.key)
        elif obj.format == "jsonl":
            with fs.open_input_stream(path) as fh:
                for batch in pajson.open_json(fh):
                    yield Batch(obj.stream, batch, origin=obj.key)
        else:
            yield from _read_csv(fs, path, obj)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceError(f"{where}: cannot read it as {obj.format}: {' '.join(str(exc).split())[:200]}") from None
    except OSError as exc:
        raise InfrastructureError(f"{where}: {' '.join(str(exc).split())[:200]}") from None


def _read_csv(fs: pafs.FileSystem, path: str, obj: StoredObject) -> Iterator[Message]:
    o = obj.options
    parse = pacsv.ParseOptions(delimiter=o.delimiter, quote_char=o.quote_char if o.quote_char else False)
    read = pacsv.ReadOptions(block_size=o.block_size, skip_rows=o.skip_rows, encoding=o.encoding,
                             autogenerate_column_names=not o.header)
    with fs.open_input_stream(path) as head:  # the header first: every column is read as text
        names = pacsv.open_csv(head, read_options=pacsv.ReadOptions(block_size=1 << 16, skip_rows=o.skip_rows,
                                                                    encoding=o.encoding,
                                                                    autogenerate_column_names=not o.header),
                               parse_options=parse).schema.names
    convert = pacsv.ConvertOptions(null_values=list(o.null_values), strings_can_be_null=True,
                                   quoted_strings_can_be_null=True, column_types={n: pa.string() for n in names})
    with fs.open_input_stream(path) as fh:
        for batch in pacsv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert):
            yield Batch(obj.stream, batch, origin=obj.key)


__all__ = ["StoredObject", "read_objects", "resolve_objects", "source_store"]
