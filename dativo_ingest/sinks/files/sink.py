"""Plain-file targets (``s3``, ``minio``, ``azure_blob``, ``local``, ``markdown_kv``, ``csv``): Parquet, CSV or
Markdown-KV files plus a run manifest written last, with the state inside it.

Layout: ``<prefix>/<tenant>/<domain>/<dataProduct>/<asset>/ingest_date=YYYY-MM-DD/<run_id>-<n>.parquet`` (``.csv``
for CSV, ``.md`` for Markdown-KV; ``<domain>`` and ``<dataProduct>`` are left out when the asset has none). The
tenant comes first in every dataset path, as in every Iceberg identifier: two tenants never share a dataset.
A file is closed and a new one started once it reaches ``parquet_target_size_mb`` (default 128). The
``ingest_date`` column lives in the folder name, not in the files. ``commit`` writes the manifest
(see ``manifest.py``), so a reader that follows the newest manifest never sees a half-written run, and the
next run starts from the state in that same manifest: data and state are published by one write.

CSV files (``file_format: csv``, or ``target_connector: csv``: a local folder, like ``markdown_kv``) have a header
line; text is always quoted (inner quotes doubled) and NULL is an empty unquoted field, so empty text and NULL
stay apart; timestamps are ISO 8601 (``…Z`` when in UTC). Binary columns cannot be written as CSV.

Write modes: ``append`` adds files; ``overwrite`` publishes only this run's files (the previous ones are
deleted after the manifest is written); ``merge`` rewrites the live files holding any of the keys being
written without those rows (copy-on-write), then adds the new files.

Concurrent writers: a commit that finds a newer manifest than the one its run started from is re-applied on
top of it (the merge re-run against the new live files) only for a merge by primary key whose state covers
the other run's, as for Iceberg (``sinks/base.py``); otherwise it fails with one line and publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.errors import ConfigError, DativoError, InfrastructureError
from dativo_ingest.formats import markdown_kv
from dativo_ingest.logs import redact
from dativo_ingest.paths import dativo_home
from dativo_ingest.sinks.base import CommitConflict, CommitOutcomeUnknown, CommitRequest, CommitResult, Head, Sink
from dativo_ingest.sinks.checks import check_store
from dativo_ingest.sinks.files.manifest import (
    Manifest,
    latest_manifest,
    manifest_names,
    prune_manifests,
    read_manifest,
    rival_manifests,
    withdraw_manifest,
    write_manifest,
)
from dativo_ingest.sinks.layout import target_partitioning
from dativo_ingest.stage.stage import asset_fields
from dativo_ingest.storage.stores import (
    ObjectStore,
    chosen_store,
    in_use,
    local_store,
    make_store,
    store_block,
)

log = logging.getLogger(__name__)

FILE_TARGETS = ("s3", "minio", "azure_blob", "local", "markdown_kv", "csv")
FORMATS = {"parquet": ".parquet", "csv": ".csv", "markdown_kv": ".md"}
#: targets that name their format: a local folder (or a nested object store) of these files
FORMAT_TARGETS = {"markdown_kv": "markdown_kv", "csv": "csv"}
DEFAULT_TARGET_SIZE_MB = 128
SLICE_ROWS = 65_536
MIN_PIECE_ROWS = 1_024
INGEST_DATE = "ingest_date"
_KEY_SEPARATOR = "\x1f"


@dataclass
class FileTarget:
    """Where and how a job's plain files are written."""

    store: ObjectStore
    file_format: str
    target_bytes: int
    #: folders between the prefix and the asset: ``[tenant, domain, dataProduct]``
    layout: list[str]
    job_path: Path | None = None

    def dataset(self, name: str) -> ObjectStore:
        """The folder of one dataset: ``<prefix>/<tenant>/<domain>/<dataProduct>/<name>``."""
        return self.store.at(*self.layout, name)

    def sink(self, name: str, schema: pa.Schema, *, run_id: str, ingest_date: date,
             primary_key: Sequence[str] = (), write_mode: str = "append") -> FileSink:
        """The sink of one dataset of this target."""
        return FileSink(self, self.dataset(name), schema, run_id=run_id, ingest_date=ingest_date,
                        primary_key=primary_key, write_mode=write_mode)


def is_file_target(plan: JobPlan) -> bool:
    """Whether the job writes plain files (not an Iceberg table)."""
    return plan.target_connector in FILE_TARGETS


def _file_store(plan: JobPlan) -> ObjectStore:
    kind = plan.target_connector
    connection = plan.target.connection_values
    if kind in ("s3", "minio", "azure_blob"):
        names = (kind, "s3") if kind == "minio" else (kind,)
        nested = next((k for k in names if isinstance(connection.get(k), dict)), None)
        where = f"target.connection.{nested}" if nested else "target.connection"
        return make_store(kind, store_block(connection, kind), where, plan.job_path)
    if kind in FORMAT_TARGETS:
        store = chosen_store(connection, plan.target.storage, plan.job_path)
        if store is not None:
            return store
    root = str(connection.get("path") or plan.target.path or "")
    where = "target.connection.path" if connection.get("path") else "target.path"
    if not root:
        root, where = str(dativo_home() / "files"), "target.connection.path"
    path = Path(root)
    if not path.is_absolute():
        path = plan.project_root / path
    if any(in_use(connection.get(k)) for k in ("s3", "minio", "azure_blob")):
        raise ConfigError(plan.job_path, f"target_connector '{kind}' writes to a local folder, but an object store "
                          "is configured", field="target.connection",
                          fix="use target_connector s3, minio or azure_blob for object storage")
    return local_store(path, where, str(connection.get("prefix") or ""))


def file_target(plan: JobPlan) -> FileTarget | None:
    """The plain-file target of a job, or None when it writes to Iceberg."""
    if not is_file_target(plan):
        return None
    asset_target = plan.asset.target
    fmt = ((plan.job.target.file_format if plan.job.target else None)
           or FORMAT_TARGETS.get(plan.target_connector)
           or (asset_target.file_format if asset_target else None) or plan.target.file_format or "parquet")
    if fmt not in FORMATS:
        raise ConfigError(plan.job_path, f"file_format '{fmt}' cannot be written by target '{plan.target_connector}'",
                          field="target.file_format", fix=f"use one of {', '.join(FORMATS)}")
    binary = [f.name for f in asset_fields(plan.asset) if pa.types.is_binary(f.type.arrow)]
    if fmt == "csv" and binary:
        raise ConfigError(plan.job_path, f"binary columns {binary} cannot be written as CSV",
                          field="target.file_format", fix="use file_format: parquet for this asset")
    size = plan.target.parquet_target_size_mb or (
        getattr(asset_target, "parquet_target_size_mb", None) if asset_target else None) or DEFAULT_TARGET_SIZE_MB
    try:
        target_bytes = int(float(size) * 1024 * 1024)
    except (TypeError, ValueError):
        target_bytes = 0
    if target_bytes <= 0:
        raise ConfigError(plan.job_path, f"parquet_target_size_mb must be a positive number, not {size!r}",
                          field="target.parquet_target_size_mb", fix="e.g. parquet_target_size_mb: 128")
    others = [p for p in target_partitioning(plan) if p != INGEST_DATE]
    if others:
        raise ConfigError(plan.job_path, f"plain-file targets are partitioned by ingest_date only, not {others}",
                          field="target.partitioning",
                          fix="drop those entries for this target, or write to an Iceberg target (target_connector:"
                              " iceberg) which supports them")
    extra = plan.asset.model_extra or {}
    domain = getattr(plan.asset, "domain", None) or extra.get("domain")
    product = getattr(plan.asset, "dataProduct", None) or extra.get("dataProduct")
    layout = [plan.tenant_id] + [str(part) for part in (domain, product) if part]
    return FileTarget(_file_store(plan), fmt, target_bytes, layout, plan.job_path)


# -- writing ---------------------------------------------------------------------------------------------------


@dataclass
class _Written:
    path: str  # relative to the dataset folder
    rows: int
    bytes: int


class _OpenFile:
    """One data file being written: Parquet row groups, CSV lines or Markdown-KV documents appended to a stream."""

    def __init__(self, dataset: ObjectStore, rel: str, schema: pa.Schema, file_format: str,
                 id_columns: Sequence[str], start: int) -> None:
        self.rel = rel
        self.rows = 0
        self.format = file_format
        self.id_columns = list(id_columns)
        self.start = start
        self.stream = dataset.filesystem.open_output_stream(dataset.fs_path(rel))
        self.writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        if file_format == "parquet":
            self.writer = pq.ParquetWriter(self.stream, schema, compression="zstd")
        elif file_format == "csv":
            self.writer = pacsv.CSVWriter(self.stream, schema)

    def write(self, piece: pa.Table) -> None:
        if isinstance(self.writer, pq.ParquetWriter):
            self.writer.write_table(piece, row_group_size=SLICE_ROWS)
        elif self.writer is not None:
            self.writer.write_table(piece)
        else:
            self.stream.write(markdown_kv.encode_bytes(piece, self.id_columns, start=self.start + self.rows))
        self.rows += piece.num_rows

    @property
    def size(self) -> int:
        return self.stream.tell()

    def close(self) -> _Written:
        if self.writer is not None:
            self.writer.close()
        size = self.stream.tell()
        self.stream.close()
        return _Written(self.rel, self.rows, size)


class FileSink(Sink):
    """Writes one dataset; ``write`` fills data files, ``commit`` publishes them with the state (manifest last)."""

    def __init__(self, target: FileTarget, dataset: ObjectStore, schema: pa.Schema, *, run_id: str,
                 ingest_date: date, primary_key: Sequence[str] = (), write_mode: str = "append") -> None:
        super().__init__(dataset.url(), schema, primary_key=primary_key, write_mode=write_mode)
        self.target = target
        self.dataset = dataset
        self.file_schema = pa.schema([f for f in schema if f.name != INGEST_DATE])
        self.run_id = run_id
        self.partition = f"{INGEST_DATE}={ingest_date.isoformat()}"
        self.extension = FORMATS[target.file_format]
        self._open: _OpenFile | None = None
        self._counter = 0
        self._rows_written = 0
        self._bytes_per_row: float | None = None

    # -- target ------------------------------------------------------------------------------
    def preflight(self) -> None:
        """The store answers, the bucket exists, and a probe object can be written and deleted."""
        check_store(self.target.store, self.target.job_path)

    def open(self) -> None:
        """Nothing to create ahead of the first write."""

    def _head(self) -> Head:
        manifest = self._io("reading the run manifest", lambda: latest_manifest(self.dataset))
        if manifest is None:
            return Head(None, None)
        return Head(manifest.sequence, manifest.state, manifest, manifest.name)

    # -- write -------------------------------------------------------------------------------
    def write(self, data: pa.Table) -> None:
        """Write these rows into the open data file (a new one once it reaches the target size)."""
        if data.num_rows == 0:
            return
        if INGEST_DATE in data.column_names:
            data = data.drop_columns([INGEST_DATE])
        if self._bytes_per_row is None:  # until a file tells us, assume 4:1 compression of the Arrow size
            self._bytes_per_row = max(1.0, data.nbytes / data.num_rows / 4)
        offset = 0
        while offset < data.num_rows:
            piece = data.slice(offset, self._piece_rows())
            self._io("writing a data file", lambda p=piece: self._write_piece(p))
            offset += piece.num_rows
        self._track(data)

    @property
    def streams_rows(self) -> bool:
        """Rows go on into the open data file."""
        return True

    def _piece_rows(self) -> int:
        """Rows for the next row group / document batch: what fills the open file to the target size."""
        room = self.target.target_bytes - (self._open.size if self._open is not None else 0)
        return int(min(SLICE_ROWS, max(MIN_PIECE_ROWS, room / (self._bytes_per_row or 1.0))))

    def _write_piece(self, piece: pa.Table) -> None:
        if self._open is None:
            self._open = self._new_file(self.partition, piece.schema, start=self._rows_written)
        self._open.write(piece)
        self._rows_written += piece.num_rows
        size = self._open.size
        if size > 0:
            self._bytes_per_row = size / self._open.rows
        if size >= self.target.target_bytes * 0.95:
            self._pending.files.append(self._open.close())
            self._open = None

    def _new_file(self, folder: str, schema: pa.Schema, *, start: int = 0) -> _OpenFile:
        rel = f"{folder}/{self.run_id}-{self._counter}{self.extension}"
        self._counter += 1
        if self.dataset.kind == "local":
            self.dataset.filesystem.create_dir(self.dataset.fs_path(folder), recursive=True)
        return _OpenFile(self.dataset, rel, schema, self.target.file_format, self.primary_key, start)

    def current_keys(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The primary-key columns of every row the dataset holds now (one live file at a time)."""
        schema = pa.schema([self.file_schema.field(k) for k in self.primary_key])
        self._pin()
        assert self._base is not None
        rels = [str(f["path"]) for f in self._base.handle.files] if self._base.handle is not None else []

        def batches() -> Iterator[pa.RecordBatch]:
            for rel in rels:
                table = self._io("reading a data file", lambda r=rel: self._read(r, self.primary_key))
                yield from table.select(self.primary_key).cast(schema).to_batches()

        return schema, batches()

    # -- commit ------------------------------------------------------------------------------
    def _seal(self) -> None:
        """Close the open data file: it joins the files of the next commit."""
        if self._open is not None:
            self._pending.files.append(self._io("closing a data file", self._open.close))
            self._open = None

    def _publish(self, head: Head, request: CommitRequest) -> tuple[CommitResult, Head]:
        """Rewrite what merge/overwrite require on top of ``head``, then write the manifest (last)."""
        base: Manifest | None = head.handle
        pending = request.pending
        live = list(base.files) if base is not None else []
        removed: list[str] = []
        rewritten: list[_Written] = []
        merged = False
        if request.reset:
            pass
        elif self._replaces_all_now:
            removed, live = [f["path"] for f in live], []
        elif self.merges_by_key and pending.keys and live:
            try:
                live, removed, rewritten = self._merge(live, pending.key_table())
            except InfrastructureError:  # a live file may be gone because another run superseded it meanwhile
                if not self._head().same_as(head):
                    raise CommitConflict("another run published a manifest while this one merged") from None
                raise
            merged = True
        added = rewritten + pending.files
        manifest = Manifest(
            sequence=(base.sequence + 1) if base is not None else 1, run_id=self.run_id,
            file_format=self.target.file_format, write_mode=self.write_mode, state=request.state,
            files=live + [{"path": f.path, "rows": f.rows, "bytes": f.bytes} for f in added],
            added=[f.path for f in added], removed=removed, properties=request.properties,
        )
        try:
            if merged and not self._head().same_as(head):  # another run published while this one merged
                raise CommitConflict(f"another run published a manifest after sequence {head.version}")
            url = self._io("writing the run manifest", lambda: write_manifest(self.dataset, manifest))
        except BaseException:
            self._delete([f.path for f in rewritten])
            raise
        self._settle(manifest, rewritten)
        self._delete(removed)  # superseded files: no manifest from now on lists them
        try:
            prune_manifests(self.dataset)
        except OSError:
            log.debug("could not prune old manifests of %s", self.identifier)
        log.info("published %s: %d new file(s), %d row(s)", url, len(added), pending.rows)
        return (CommitResult(manifest.sequence, pending.rows, len(added)),
                Head(manifest.sequence, request.state, manifest, manifest.name))

    def _settle(self, manifest: Manifest, rewritten: list[_Written]) -> None:
        """Withdraw ``manifest`` if another run published the same sequence meanwhile (``CommitConflict``: the
        loop retries on the new head); keep it when the manifests cannot be listed (it was written)."""
        try:
            rivals = rival_manifests(self.dataset, manifest)
        except OSError as exc:
            log.warning("%s: could not list the run manifests after publishing %s (%s)", self.identifier,
                        manifest.name, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return
        if not rivals:
            return
        try:
            withdraw_manifest(self.dataset, manifest)
        except OSError as exc:
            raise CommitOutcomeUnknown(f"manifest {manifest.name} raced with {rivals[0]} and could not be "
                                       f"withdrawn: {str(exc).splitlines()[0][:160] if str(exc) else exc!r}") from None
        self._delete([f.path for f in rewritten])
        raise CommitConflict(f"another run published manifest {rivals[0]} at the same moment")

    def abort(self) -> None:
        """Delete the data files written since the last commit, the open one too (no manifest lists them)."""
        if self._open is not None:
            self._pending.files.append(_Written(self._open.rel, self._open.rows, 0))
            try:
                self._open.close()
            except Exception:  # the store may be the reason we abort
                log.debug("could not close %s", self._open.rel)
            self._open = None
        super().abort()

    def _describe(self, file: Any) -> dict[str, Any]:
        return {"path": file.path, "rows": file.rows, "bytes": file.bytes}

    def _undescribe(self, description: dict[str, Any]) -> Any:
        return _Written(str(description["path"]), int(description["rows"]), int(description["bytes"]))

    def recent_properties(self, limit: int) -> list[dict[str, str]]:
        names = self._io("listing the run manifests", lambda: manifest_names(self.dataset))[-limit:]
        out = []
        for name in reversed(names):
            try:
                out.append(self._io("reading a run manifest", lambda n=name: read_manifest(self.dataset, n)).properties)
            except DativoError:  # pruned meanwhile
                continue
        return out

    def _discard(self, files: list[Any]) -> None:
        self._delete([f.path for f in files])

    # -- merge (copy-on-write) ---------------------------------------------------------------
    def _merge(self, live: list[dict[str, Any]], keys: pa.Table
               ) -> tuple[list[dict[str, Any]], list[str], list[_Written]]:
        wanted = _key_strings(keys, self.primary_key)
        kept: list[dict[str, Any]] = []
        removed: list[str] = []
        rewritten: list[_Written] = []
        try:
            for entry in live:
                rel = str(entry["path"])
                keys_in_file = self._io("reading a data file for merge",
                                        lambda r=rel: self._read(r, self.primary_key))
                hit = pc.is_in(_key_strings(keys_in_file, self.primary_key), value_set=wanted)
                if not pc.any(hit).as_py():
                    kept.append(entry)
                    continue
                removed.append(rel)
                table = self._io("reading a data file for merge", lambda r=rel: self._read(r))
                rest = table.filter(pc.invert(hit))
                if rest.num_rows:
                    folder = rel.rsplit("/", 1)[0] if "/" in rel else self.partition
                    out = self._new_file(folder, rest.schema)
                    self._io("rewriting a data file for merge", lambda o=out, t=rest: o.write(t))
                    rewritten.append(self._io("closing a data file", out.close))
        except BaseException:
            self._delete([f.path for f in rewritten])
            raise
        return kept, removed, rewritten

    def _read(self, rel: str, columns: Sequence[str] | None = None) -> pa.Table:
        path = self.dataset.fs_path(rel)
        if self.target.file_format == "parquet":
            return pq.read_table(path, filesystem=self.dataset.filesystem, columns=columns)
        if self.target.file_format == "csv":
            with self.dataset.filesystem.open_input_stream(path) as stream:
                return read_csv_file(stream, self.file_schema, columns)
        with self.dataset.filesystem.open_input_stream(path) as stream:
            return markdown_kv.decode(stream.read().decode("utf-8"), self.file_schema)

    # -- helpers -----------------------------------------------------------------------------
    def _delete(self, paths: list[str]) -> None:
        for rel in paths:
            try:
                self.dataset.filesystem.delete_file(self.dataset.fs_path(rel))
            except OSError:
                log.debug("could not delete %s (an unlisted file is never read)", rel)

    def _io(self, action: str, fn: Any) -> Any:
        """Run a storage call; a storage failure becomes one line naming the dataset and the store."""
        try:
            return fn()
        except DativoError:
            raise
        except OSError as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise InfrastructureError(redact(
                f"{self.target.job_path}: {self.dataset.where}: {action} failed at {self.identifier} "
                f"({self.dataset.describe()}): {first} — nothing of this commit was published")) from None


def read_csv_file(stream: Any, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """A CSV data file this sink wrote, read back in ``schema`` (only NULL is an empty unquoted field)."""
    options = pacsv.ConvertOptions(column_types=schema, null_values=[""], strings_can_be_null=True,
                                   quoted_strings_can_be_null=False,
                                   include_columns=list(columns) if columns is not None else schema.names)
    return pacsv.read_csv(stream, convert_options=options)


def _key_strings(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    parts = [pc.fill_null(pc.cast(table.column(c), pa.string()), "\x00") for c in columns]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, _KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


__all__ = ["FILE_TARGETS", "FileSink", "FileTarget", "file_target", "is_file_target", "read_csv_file"]
