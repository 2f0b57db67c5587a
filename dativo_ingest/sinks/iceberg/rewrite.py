"""Merge by primary key as copy-on-write by data file, computed in Arrow and DuckDB (no row-filter expression).

A merge (or a ``detect_deletes`` commit) removes the table's older rows whose keys it writes or deletes:

1. ``plan`` — from the manifests, the data files whose key bounds (column stats) and partition values (when
   the table partitions by a key column, or a transform of one) can hold one of the keys: a DuckDB range join
   of the files' bounds with the keys, so the cost follows the number of keys, never a filter's depth.
2. ``rewrite_file`` — one candidate at a time: its key columns are anti-joined (Arrow hash join, any number
   and types of key columns) with the keys; a file that holds none is left alone; otherwise its surviving rows
   are streamed into new data files (in the file's order, so a sorted file stays sorted), memory bounded by
   ``CHUNK_BYTES``.
3. ``stage_overwrite`` — one snapshot in the caller's transaction: the rewritten files removed, the survivors'
   files and the run's new files added, with the run's snapshot properties (the state).

The commit asserts the head it was planned on: a concurrent commit (which may have touched a rewritten
file) makes it fail as a conflict, and the sink plans again on the new head. Data files are written,
and one file is read with its deletes applied, through ``datafiles`` (pyiceberg's private API, version-checked).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, pyarrow_to_schema
from pyiceberg.manifest import DataFile, FileFormat
from pyiceberg.table import FileScanTask, Table, Transaction

from dativo_ingest.errors import DativoError
from dativo_ingest.machine import worker_threads
from dativo_ingest.sinks.iceberg.datafiles import data_files, pyiceberg_internals

log = logging.getLogger(__name__)

#: surviving rows are written out whenever this many bytes of them are held
CHUNK_BYTES = 128 * 1024 * 1024
#: rows per batch when a file is read row group by row group
BATCH_ROWS = 128 * 1024
_POS = "__dativo_pos"


@dataclass
class Rewrite:
    """What a merge changes in the files the table held: removed files, and the files of their surviving rows."""

    removed: list[DataFile] = field(default_factory=list)
    added: list[DataFile] = field(default_factory=list)
    #: rows of the removed files that held one of the keys (replaced or deleted)
    rows_replaced: int = 0
    #: candidate files read that held none of the keys (left in place)
    files_untouched: int = 0


def key_columns(keys: pa.Table, primary_key: Sequence[str]) -> pa.Table:
    """The key columns, refusing null values (a null key can never be matched, nor merged). Duplicates stay:
    matching by hash does not need the keys distinct, and making them so costs more than it saves."""
    keys = keys.select(list(primary_key)).combine_chunks()
    for name in primary_key:
        if keys.column(name).null_count:
            raise DativoError(f"primary key column '{name}' holds null values: a merge by primary key needs "
                              f"every key value set — fix the source, or choose a key whose columns are never null")
    return keys


def plan(table: Table, keys: pa.Table, primary_key: Sequence[str]) -> list[FileScanTask]:
    """The data files of the table's current snapshot whose bounds and partition values can hold one of ``keys``
    (in the table's key types). A file lacking a bound of a key column is a candidate."""
    if table.current_snapshot() is None or keys.num_rows == 0:
        return []
    tasks = list(table.scan().plan_files())
    if not tasks:
        return []
    schema = table.schema()
    ids = [schema.find_field(name).field_id for name in primary_key]
    types = [schema.find_field(name).field_type for name in primary_key]
    spec = table.spec()
    key_cols = {f"k{i}": keys.column(name) for i, name in enumerate(primary_key)}
    bounds: dict[str, list[Any]] = {"idx": []}
    candidates: set[int] = set()
    for idx, task in enumerate(tasks):
        row = {}
        for i, (fid, ftype) in enumerate(zip(ids, types, strict=True)):
            row[f"lo{i}"] = _bound(task.file.lower_bounds, fid, ftype)
            row[f"hi{i}"] = _bound(task.file.upper_bounds, fid, ftype)
        if any(v is None for v in row.values()):
            candidates.add(idx)  # a key column without bounds: the file may hold any key
            continue
        bounds["idx"].append(idx)
        for name, value in row.items():
            bounds.setdefault(name, []).append(value)
    if not bounds["idx"]:
        return tasks
    files: dict[str, pa.Array] = {"idx": pa.array(bounds["idx"], pa.int64())}
    try:
        for i in range(len(primary_key)):
            for side in ("lo", "hi"):
                files[f"{side}{i}"] = pa.array(bounds[f"{side}{i}"], key_cols[f"k{i}"].type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:  # bounds we cannot compare
        log.debug("key bounds not comparable (%s): every file is a candidate", exc)
        return tasks
    n_parts = 0
    for pos, name, transform in _key_partitions(table, primary_key):
        try:  # the partition value each key would have, beside the value each file of the current spec has
            values = [tasks[idx].file.partition[pos] if tasks[idx].file.spec_id == spec.spec_id else None
                      for idx in bounds["idx"]]
            of_keys = transform(keys.column(name))
            of_files = pa.array(values, of_keys.type)
        except Exception as exc:  # a transform pyarrow cannot compute here: bounds alone decide
            log.debug("partition field %d not used to plan the merge (%s)", pos, exc)
            continue
        key_cols[f"p{n_parts}"], files[f"p{n_parts}"] = of_keys, of_files
        n_parts += 1
    candidates.update(_range_join(pa.table(files), pa.table(key_cols), len(primary_key), n_parts))
    return [task for idx, task in enumerate(tasks) if idx in candidates]


def _range_join(files: pa.Table, keys: pa.Table, n_keys: int, n_parts: int) -> list[int]:
    """Indexes of the files some key falls within (every key column within the file's bounds, and the same
    partition value of a key-derived partition field, when the file has one)."""
    conds = [f"k.k{i} BETWEEN f.lo{i} AND f.hi{i}" for i in range(n_keys)]
    conds += [f"(f.p{j} IS NULL OR f.p{j} = k.p{j})" for j in range(n_parts)]
    import duckdb  # merge only: a plain append loads no DuckDB

    con = duckdb.connect(config={"threads": worker_threads(), "memory_limit": "256MB"})
    try:
        con.register("f", files)
        con.register("k", keys)
        found: list[int] = []
        # the files of the current spec first: an equality on the partition value makes it a hash join
        if n_parts:
            eq = " AND ".join([f"f.p{j} = k.p{j}" for j in range(n_parts)] + conds[:n_keys])
            nonnull = " AND ".join(f"f.p{j} IS NOT NULL" for j in range(n_parts))
            found += [r[0] for r in con.execute(
                f"SELECT DISTINCT f.idx FROM f JOIN k ON {eq} WHERE {nonnull}").fetchall()]
            other = " OR ".join(f"f.p{j} IS NULL" for j in range(n_parts))
            found += [r[0] for r in con.execute(
                f"SELECT DISTINCT f.idx FROM (SELECT * FROM f WHERE {other}) f JOIN k ON "
                f"{' AND '.join(conds[:n_keys])}").fetchall()]
        else:
            found += [r[0] for r in con.execute(
                f"SELECT DISTINCT f.idx FROM f JOIN k ON {' AND '.join(conds)}").fetchall()]
        return found
    finally:
        con.close()


def _bound(bounds: dict[int, bytes] | None, field_id: int, field_type: Any) -> Any:
    raw = (bounds or {}).get(field_id)
    if raw is None:
        return None
    try:
        return from_bytes(field_type, raw)
    except Exception:  # a truncated or unreadable bound: treat the file as unbounded
        return None


def _key_partitions(table: Table, primary_key: Sequence[str]) -> list[tuple[int, str, Any]]:
    """The current spec's partition fields computed from one key column: (position, key column, transform)."""
    schema = table.schema()
    out = []
    for pos, pfield in enumerate(table.spec().fields):
        source = schema.find_field(pfield.source_id)
        if source.name not in primary_key:
            continue
        try:
            out.append((pos, source.name, pfield.transform.pyarrow_transform(source.field_type)))
        except Exception:  # a transform pyarrow cannot compute here: bounds alone decide
            log.debug("partition field %s not used to plan a merge", pfield.name)
    return out


def _scan(table: Table, task: FileScanTask, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    """The rows of one data file (its delete files applied), in the table's current schema, streamed.

    A Parquet file without delete files whose schema is the table's current one is read row group by row group
    (pyarrow's own reader: memory bounded by one row group); any other file goes through pyiceberg's scan, which
    projects older schemas and applies deletes but reads ahead much more."""
    direct = _plain_parquet(table, task)
    if direct is not None:
        with direct:
            names = list(columns) if columns is not None else direct.schema_arrow.names
            yield from direct.iter_batches(batch_size=BATCH_ROWS, columns=names, use_threads=False)
        return
    schema = table.schema() if columns is None else table.schema().select(*columns)
    scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    deletes = pyiceberg_internals()._read_all_delete_files(table.io, [task])
    yield from scan._record_batches_from_scan_tasks_and_deletes([task], deletes)


def _plain_parquet(table: Table, task: FileScanTask) -> pq.ParquetFile | None:
    """The file, opened, when it can be read as it is: Parquet, no delete files, the table's current schema."""
    if task.delete_files or task.file.file_format != FileFormat.PARQUET:
        return None
    stream = table.io.new_input(task.file.file_path).open()
    try:
        parquet = pq.ParquetFile(stream)
        file_schema = pyarrow_to_schema(parquet.schema_arrow, name_mapping=table.schema().name_mapping,
                                        format_version=table.metadata.format_version)
        if file_schema.as_struct() == table.schema().as_struct():
            return parquet
    except Exception:  # anything unusual about the file: pyiceberg's scan knows more
        log.debug("%s: read through pyiceberg's scan", task.file.file_path)
    stream.close()
    return None


def hit_mask(table: Table, task: FileScanTask, keys: pa.Table, primary_key: Sequence[str]) -> pa.ChunkedArray | None:
    """For each row of the file (in scan order), whether its key is one of ``keys``; None when none is.

    The file's key columns are read (only those) and matched in one go: one hash table of ``keys`` per file."""
    key_names = list(primary_key)
    batches = list(_scan(table, task, key_names))
    if not batches:
        return None
    probe = pa.Table.from_batches(batches).select(key_names).combine_chunks()
    probe = pa.table({k: _joinable(probe.column(k).cast(keys.column(k).type)) for k in key_names})
    if len(key_names) == 1:
        mask = pc.is_in(probe.column(0), value_set=_joinable(keys.column(key_names[0])).combine_chunks())
    else:
        positions = pc.indices_nonzero(pc.is_null(pa.nulls(probe.num_rows, pa.bool_())))  # 0 .. n-1
        right = pa.table({k: _joinable(keys.column(k)) for k in key_names})
        found = probe.append_column(_POS, positions).join(right, keys=key_names, join_type="left semi",
                                                          use_threads=False).column(_POS)
        mask = pc.is_in(positions, value_set=found.combine_chunks().cast(positions.type))
    mask = mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask
    return pa.chunked_array([mask]) if pc.any(mask).as_py() else None


def _joinable(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Large strings / binaries as the plain types when they fit: Arrow hashes those about twice as fast."""
    kinds = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    if column.type in kinds and column.nbytes < (1 << 30):
        return column.cast(kinds[column.type])
    return column


def rewrite_file(table: Table, task: FileScanTask, keys: pa.Table, primary_key: Sequence[str], out: Rewrite, *,
                 write_uuid: uuid.UUID, counter: itertools.count[int]) -> None:
    """Rewrite one candidate file without the rows whose key is in ``keys`` (adds to ``out``); a file that holds
    none of them is left in place."""
    mask = hit_mask(table, task, keys, primary_key)
    if mask is None:
        out.files_untouched += 1
        return
    out.removed.append(task.file)
    replaced = int(pc.sum(mask).as_py() or 0)
    out.rows_replaced += replaced
    if replaced == len(mask):
        return  # every row replaced: the file goes, nothing survives
    held: list[pa.RecordBatch] = []
    held_bytes = offset = 0
    for batch in _scan(table, task, None):
        keep = pc.invert(mask.slice(offset, batch.num_rows))
        offset += batch.num_rows
        kept = batch.filter(keep.combine_chunks())
        if kept.num_rows:
            held.append(kept)
            held_bytes += kept.nbytes
        if held_bytes >= CHUNK_BYTES:
            out.added += _write(table, held, write_uuid, counter)
            held, held_bytes = [], 0
    if held:
        out.added += _write(table, held, write_uuid, counter)


def _write(table: Table, batches: list[pa.RecordBatch], write_uuid: uuid.UUID,
           counter: itertools.count[int]) -> list[DataFile]:
    return data_files(table, pa.Table.from_batches(batches), write_uuid=write_uuid, counter=counter)


def rewrite(table: Table, keys: pa.Table, primary_key: Sequence[str], *, write_uuid: uuid.UUID | None = None,
            counter: itertools.count[int] | None = None) -> Rewrite:
    """Plan and rewrite, file by file, every data file holding one of ``keys`` (any table in the key columns)."""
    out = Rewrite()
    keys = key_columns(_in_table_types(table, keys, primary_key), primary_key)
    tasks = plan(table, keys, primary_key)
    write_uuid = write_uuid or uuid.uuid4()
    counter = counter or itertools.count(0)
    for task in tasks:
        rewrite_file(table, task, keys, primary_key, out, write_uuid=write_uuid, counter=counter)
    log.info("merge: %d candidate files, %d rewritten, %d held no key; %d older rows replaced", len(tasks),
             len(out.removed), out.files_untouched, out.rows_replaced)
    return out


def _in_table_types(table: Table, keys: pa.Table, primary_key: Sequence[str]) -> pa.Table:
    """The keys cast to the types the table holds its key columns in (which may be wider than the asset's)."""
    target = table.schema().as_arrow()
    cols = []
    for name in primary_key:
        col = keys.column(name)
        want = target.field(name).type
        cols.append(col if col.type == want else col.cast(want))
    return pa.table(dict(zip(primary_key, cols, strict=True)))


def stage_overwrite(tx: Transaction, change: Rewrite, new_files: Sequence[DataFile],
                    properties: dict[str, str]) -> None:
    """Stage one snapshot in ``tx``: ``change.removed`` deleted, ``change.added`` and ``new_files`` added."""
    if not change.removed:
        with tx.update_snapshot(snapshot_properties=properties).fast_append() as append:
            for data_file in new_files:
                append.append_data_file(data_file)
        return
    with tx.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
        for data_file in change.removed:
            overwrite.delete_data_file(data_file)
        for data_file in itertools.chain(change.added, new_files):
            overwrite.append_data_file(data_file)


__all__ = ["CHUNK_BYTES", "Rewrite", "hit_mask", "key_columns", "plan", "rewrite", "rewrite_file", "stage_overwrite"]
