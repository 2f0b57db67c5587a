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
file) makes it fail as a conflict, and the sink plans again on the new head. The only use of pyiceberg's
private API in the project's merge path lives here, behind ``check_pyiceberg``.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, Transaction

from dativo_ingest.errors import DativoError

log = logging.getLogger(__name__)

#: the pyiceberg releases whose private API this module was written against (major, minor)
PYICEBERG_SUPPORTED = ((0, 12),)
#: surviving rows are written out whenever this many bytes of them are held
CHUNK_BYTES = 128 * 1024 * 1024
_POS = "__dativo_pos"


def check_pyiceberg() -> None:
    """Raise unless the installed pyiceberg is one whose private write/scan API this module uses."""
    found = tuple(int(p) for p in package_version("pyiceberg").split(".")[:2])
    if found not in PYICEBERG_SUPPORTED:
        wanted = " or ".join(f"{major}.{minor}.*" for major, minor in PYICEBERG_SUPPORTED)
        raise DativoError(f"merge by primary key needs pyiceberg {wanted}, found {package_version('pyiceberg')}: "
                          f"install the version pinned in requirements.txt")


def _private() -> Any:
    """pyiceberg's module holding the private functions used here, once its version is checked."""
    check_pyiceberg()
    import pyiceberg.io.pyarrow as private

    return private


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
    parts = _key_partitions(table, primary_key)  # (partition position, key name, transform of a key array)
    key_cols = {f"k{i}": keys.column(name) for i, name in enumerate(primary_key)}
    for j, (_pos, name, transform) in enumerate(parts):
        key_cols[f"p{j}"] = transform(keys.column(name))
    key_table = pa.table(key_cols)

    bounded: list[int] = []
    cols: dict[str, list[Any]] = {"idx": []}
    candidates: set[int] = set()
    for idx, task in enumerate(tasks):
        data_file = task.file
        row: dict[str, Any] = {}
        for i, (fid, ftype) in enumerate(zip(ids, types, strict=True)):
            row[f"lo{i}"] = _bound(data_file.lower_bounds, fid, ftype)
            row[f"hi{i}"] = _bound(data_file.upper_bounds, fid, ftype)
        if any(v is None for v in row.values()):
            candidates.add(idx)
            continue
        for j, (pos, _name, _t) in enumerate(parts):
            row[f"p{j}"] = data_file.partition[pos] if data_file.spec_id == spec.spec_id else None
        bounded.append(idx)
        cols["idx"].append(idx)
        for name, value in row.items():
            cols.setdefault(name, []).append(value)
    if bounded:
        arrays: dict[str, pa.Array] = {"idx": pa.array(cols["idx"], pa.int64())}
        try:
            for i in range(len(primary_key)):
                for side in ("lo", "hi"):
                    arrays[f"{side}{i}"] = pa.array(cols[f"{side}{i}"], key_table.column(f"k{i}").type)
            for j in range(len(parts)):
                arrays[f"p{j}"] = pa.array(cols[f"p{j}"], key_table.column(f"p{j}").type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:  # bounds in a type we cannot compare
            log.debug("key bounds not comparable (%s): every file is a candidate", exc)
            return tasks
        candidates.update(_range_join(pa.table(arrays), key_table, len(primary_key), len(parts)))
    return [task for idx, task in enumerate(tasks) if idx in candidates]


def _range_join(files: pa.Table, keys: pa.Table, n_keys: int, n_parts: int) -> list[int]:
    """Indexes of the files some key falls within (every key column within the file's bounds, and the same
    partition value of a key-derived partition field, when the file has one)."""
    conds = [f"k.k{i} BETWEEN f.lo{i} AND f.hi{i}" for i in range(n_keys)]
    conds += [f"(f.p{j} IS NULL OR f.p{j} = k.p{j})" for j in range(n_parts)]
    con = duckdb.connect(config={"threads": 2, "memory_limit": "256MB"})
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
            transform = pfield.transform.pyarrow_transform(source.field_type)
        except Exception:  # a transform pyarrow cannot compute here: bounds alone decide
            continue
        out.append((pos, source.name, transform))
    return out


def _scan(table: Table, task: FileScanTask, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
    """The rows of one data file (its delete files applied), in the table's current schema, streamed."""
    schema = table.schema() if columns is None else table.schema().select(*columns)
    scan = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    deletes = _private()._read_all_delete_files(table.io, [task])
    yield from scan._record_batches_from_scan_tasks_and_deletes([task], deletes)


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
    data = pa.Table.from_batches(batches)
    files = _private()._dataframe_to_data_files(table_metadata=table.metadata, df=data, io=table.io,
                                                write_uuid=write_uuid, counter=counter)
    return list(files)


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


__all__ = ["CHUNK_BYTES", "Rewrite", "check_pyiceberg", "key_columns", "hit_mask", "plan", "rewrite",
           "rewrite_file", "stage_overwrite"]
