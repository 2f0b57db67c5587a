"""Iceberg sink: data files are written as rows arrive, and committed together with the state.

A commit is one Iceberg transaction: (for ``overwrite``) a delete of everything, then one snapshot adding the
data files written since the last commit — for ``merge``, that snapshot also replaces the files holding a key
written or deleted by files without those rows (copy-on-write by file, ``rewrite.py``) — whose summary
carries the state envelope under ``dativo.state``. A crash before
the commit leaves only unreferenced files; a crash after it leaves data and state together.

Concurrent writers: a run's state was computed from the snapshot it started from (its *base*). When
another commit lands after that base, pyiceberg's own blind retry (which would append the same rows
twice, or put an older cursor back) is switched off, and the sink's commit loop (``sinks/base.py``)
decides: it re-plans the rewrite and re-applies it on the new head only for a merge by primary key whose state
covers the other commit's; otherwise it fails with one line, having published nothing of this commit.
"""

from __future__ import annotations

import itertools
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import (
    AlwaysTrue,
)
from pyiceberg.io.pyarrow import parquet_file_to_data_file
from pyiceberg.table import Table
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)

from dativo_ingest.errors import ConfigError, DativoError, InfrastructureError
from dativo_ingest.machine import worker_threads
from dativo_ingest.sinks.base import (
    COMMIT_ATTEMPTS,
    CommitConflict,
    CommitOutcomeUnknown,
    CommitRequest,
    CommitResult,
    ConcurrentCommitError,
    Head,
    Sink,
)
from dativo_ingest.sinks.checks import check_catalog
from dativo_ingest.sinks.iceberg import rewrite
from dativo_ingest.sinks.iceberg.catalog import CatalogChoice, is_catalog_database_error
from dativo_ingest.sinks.iceberg.contract import docs_to_update, identifier_fields, nullable_as_table
from dativo_ingest.sinks.iceberg.datafiles import RollingDataFiles, check_schema, data_files
from dativo_ingest.sinks.iceberg.evolution import type_changes

log = logging.getLogger(__name__)

STATE_PROPERTY = "dativo.state"
#: a unique id per commit in the snapshot summary: tells whether a commit whose outcome is unknown landed
COMMIT_ID_PROPERTY = "dativo.commit_id"
#: pyiceberg would re-apply a conflicting commit blindly (duplicating appends); the sink decides instead
NO_BLIND_RETRY = {"commit.retry.num-retries": "0"}
#: data files an unpartitioned table's rows are encoded into at once (``RollingDataFiles``' lanes)
WRITE_LANES = 2
_TRANSFORM = re.compile(r"^\s*(\w+)\s*\(\s*(?:(\d+)\s*,\s*)?([^()\s,]+)\s*\)\s*$")


def parse_partition(entry: str) -> tuple[str, Transform, str]:
    """``ingest_date`` / ``day(ts)`` / ``bucket(16, id)`` → (source column, transform, partition field name)."""
    m = _TRANSFORM.match(entry)
    if not m:
        return entry.strip(), IdentityTransform(), entry.strip()
    kind, num, col = m.group(1).lower(), m.group(2), m.group(3)
    simple = {"identity": IdentityTransform, "day": DayTransform, "month": MonthTransform,
              "year": YearTransform, "hour": HourTransform}
    if kind in simple and num is None:
        transform: Transform = simple[kind]()
        return col, transform, col if kind == "identity" else f"{col}_{kind}"
    if kind in ("bucket", "truncate") and num is not None:
        n = int(num)
        transform = BucketTransform(n) if kind == "bucket" else TruncateTransform(n)
        return col, transform, f"{col}_{kind}"
    raise ConfigError(None, f"cannot read partition entry '{entry}'", field="target.partitioning",
                      fix="use a column name, day(col), month(col), year(col), hour(col), "
                          "bucket(N, col) or truncate(N, col)")


class IcebergSink(Sink):
    """Writes one Iceberg table; ``write`` stages data files, ``commit`` makes them visible with the state."""

    def __init__(
        self,
        catalog: Catalog | CatalogChoice,
        identifier: str,
        schema: pa.Schema,
        *,
        partitioning: Sequence[str] = (),
        primary_key: Sequence[str] = (),
        write_mode: str = "append",
        properties: dict[str, str] | None = None,
        job_path: Path | None = None,
    ) -> None:
        super().__init__(identifier, schema, primary_key=primary_key, write_mode=write_mode)
        #: a catalog, or the choice of one (opened on first use: a preflight creates nothing)
        self._catalog: Catalog | None = None if isinstance(catalog, CatalogChoice) else catalog
        self._choice = catalog if isinstance(catalog, CatalogChoice) else None
        self.partitioning = list(partitioning)
        self.properties = properties or {}
        self.job_path = job_path
        self.table: Table | None = None
        self._write_uuid = uuid.uuid4()
        self._counter = itertools.count(0)
        self._opened = False
        self._checked_schema: pa.Schema | None = None
        #: the schema rows are written in: the table's wider types where the asset's are narrower, its nullability
        self._write_schema: pa.Schema | None = None
        #: the data file rows are being appended to (unpartitioned tables)
        self._rolling: RollingDataFiles | None = None

    @property
    def catalog(self) -> Catalog:
        """The pyiceberg catalog (opened on first use)."""
        if self._catalog is None:
            assert self._choice is not None
            self._catalog = self._choice.open()
        return self._catalog

    # -- table -------------------------------------------------------------------------------
    def preflight(self) -> None:
        """The warehouse's object store answers and takes a probe write; a configured catalog answers."""
        if self._choice is None:
            self.catalog.list_namespaces()
            return
        check_catalog(self._choice, self.job_path)

    def prepare(self) -> None:
        """Open the catalog (the embedded one creates its own tables then) and create the tenant's namespace."""
        self._create_namespace()

    def load(self) -> Table | None:
        """The existing table, or None (nothing is created)."""
        try:
            self.table = self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            self.table = None
        except (FileNotFoundError, OSError) as exc:  # the metadata the catalog points at is gone or unreadable
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise InfrastructureError(
                f"{self.identifier}: the table's metadata cannot be read ({first}) — it was deleted or moved behind "
                f"dativo's back: restore the table's metadata folder, or drop the table from the catalog to load it "
                f"again from the source") from None
        except Exception as exc:
            if is_catalog_database_error(exc) and self._choice is not None:
                raise self._choice.unreadable(exc) from None
            raise
        return self.table

    def _head(self) -> Head:
        table = self.table if self.table is not None else self.load()
        snap = table.current_snapshot() if table is not None else None
        if snap is None:
            return Head(None, None)
        return Head(snap.snapshot_id, _snapshot_state(snap), snap)

    def _create_namespace(self) -> None:
        namespace = self.identifier.rsplit(".", 1)[0]
        try:
            self.catalog.create_namespace_if_not_exists(namespace)
        except Exception:  # another run created it at the same moment
            if not self.catalog.namespace_exists(namespace):
                raise

    def open(self) -> None:
        """Load the table, creating it (schema + partition spec) or adding new asset columns."""
        self._open_table()

    def _open_table(self) -> Table:
        if self._opened and self.table is not None:
            return self.table
        self._create_namespace()
        if self.load() is None:
            self._pin(Head(None, None))  # the caller's state (none) was computed from an empty table
            try:
                self._create()
            except (TableAlreadyExistsError, CommitFailedException):  # another run created it first: use theirs
                if self.load() is None:
                    raise
                log.info("%s was created by another run at the same time", self.identifier)
        table = self.load()
        assert table is not None
        self._pin()
        wanted_properties = {**self.properties, **NO_BLIND_RETRY}
        for _ in range(COMMIT_ATTEMPTS):  # metadata-only changes; a concurrent run may make the same ones
            new = [f.with_nullable(True) for f in self.schema if f.name not in set(table.schema().column_names)]
            changes = type_changes(table.schema(), self.schema, identifier=self.identifier, where=self.job_path)
            docs = docs_to_update(table.schema(), self.schema)
            self._write_schema = nullable_as_table(changes.write_schema or self.schema, table.schema())
            properties_set = all(table.properties.get(k) == v for k, v in wanted_properties.items())
            if not new and not changes.widen and not docs and properties_set:
                break
            try:
                if new or changes.widen or docs:
                    with table.update_schema() as update:
                        if new:
                            update.union_by_name(pa.schema(new))
                        for name, wider in changes.widen.items():
                            update.update_column(name, field_type=wider)
                        for name, doc in docs.items():
                            update.update_column(name, doc=doc)
                    log.info("added columns %s, widened %s, updated the docs of %s in %s", [f.name for f in new],
                             list(changes.widen), list(docs), self.identifier)
                else:
                    table.transaction().set_properties(wanted_properties).commit_transaction()
            except CommitFailedException:
                pass
            except Exception as exc:  # a catalog that refuses property updates: keep going, but say what it costs
                if new or changes.widen or docs:
                    raise
                log.warning("%s: could not set the table's properties (%s); two runs at once may then duplicate "
                            "rows", self.identifier, " ".join(str(exc).split())[:200])
                break
            table = self.load()
            assert table is not None
        else:
            raise ConcurrentCommitError(f"{self.identifier}: could not update the table's schema or properties: "
                                        f"other writers kept changing it ({COMMIT_ATTEMPTS} attempts) — run again")
        self.table = table
        self._opened = True
        return self.table

    def _create(self) -> None:
        with self.catalog.create_table_transaction(
            self.identifier, schema=self.schema, properties={**self.properties, **NO_BLIND_RETRY}
        ) as tx:
            if self.partitioning:
                with tx.update_spec() as spec:
                    for entry in self.partitioning:
                        col, transform, name = parse_partition(entry)
                        if col not in self.schema.names:
                            raise ConfigError(None, f"partition column '{col}' is not in the asset schema",
                                              field="target.partitioning",
                                              fix="partition by a schema field or ingest_date")
                        spec.add_field(col, transform, name)
            key = identifier_fields(self.schema, self.primary_key)
            if key:
                with tx.update_schema() as update:
                    update.set_identifier_fields(*key)
        log.info("created Iceberg table %s", self.identifier)

    # -- write / commit ----------------------------------------------------------------------
    def write(self, data: pa.Table) -> None:
        """Write data files for these rows now; they become visible only at ``commit``."""
        if data.num_rows == 0:
            return
        table = self._open_table()
        if self._write_schema is not None and not data.schema.equals(self._write_schema):
            data = data.cast(self._write_schema)  # the table's wider types (lossless), its required columns
        if self._checked_schema is None or not self._checked_schema.equals(data.schema):
            check_schema(table, data.schema)
            self._checked_schema = data.schema
        if table.metadata.spec().is_unpartitioned():  # rows go on into the open file, as row groups
            if self._rolling is None:
                self._rolling = RollingDataFiles(table.metadata, table.io, write_uuid=self._write_uuid,
                                                 counter=self._counter, lanes=min(WRITE_LANES, worker_threads()))
            files = self._rolling.write(data)
        else:
            files = data_files(table, data, write_uuid=self._write_uuid, counter=self._counter)
        self._track(data, files)

    @property
    def streams_rows(self) -> bool:
        """Whether rows written here go on into an open file (an unpartitioned table): small chunks cost no
        extra files, and encoding them overlaps reading."""
        if self.table is not None:  # a table partitioned by an earlier config stays partitioned
            return self.table.metadata.spec().is_unpartitioned()
        return not self.partitioning

    def _seal(self) -> None:
        """Close the open data file: it belongs to the coming commit."""
        if self._rolling is not None:
            self._pending.files.extend(self._rolling.finish())
            self._rolling = None  # the next write may see a changed table (a commit, a schema update)

    def close(self) -> None:
        """Delete a data file still open: its rows were never committed."""
        if self._rolling is not None:
            self._rolling.abandon()
            self._rolling = None

    def abort(self) -> None:
        """Delete the open data file and every file written since the last commit."""
        self.close()
        super().abort()

    @property
    def write_schema(self) -> pa.Schema:
        """The Arrow schema rows are written in (the table's wider types, its nullability); opens the table."""
        self._open_table()
        return self._write_schema if self._write_schema is not None else self.schema

    def add_written_files(self, paths: Sequence[str]) -> int:
        """Take Parquet data files written into the table's location by someone else (Spark tasks) into the next
        commit, exactly as if ``write`` had written them: their metrics (rows, bounds, partition) are read from
        their footers, and their primary keys when merging. Returns their rows."""
        table = self._open_table()
        files = [parquet_file_to_data_file(table.io, table.metadata, path) for path in paths]
        rows = sum(f.record_count for f in files)
        self._pending.files.extend(files)
        self._pending.rows += rows
        if self.merges_by_key:
            import pyarrow.parquet as pq

            for path in paths:
                with table.io.new_input(path).open() as stream:
                    self._pending.keys.append(pq.read_table(stream, columns=self.primary_key))
        return rows

    def current_keys(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The primary-key columns of every row the table holds now, streamed (nothing if no table yet)."""
        table = self.table if self.table is not None else self.load()
        schema = pa.schema([self.schema.field(k) for k in self.primary_key])
        if table is None or table.current_snapshot() is None:
            return schema, iter(())
        reader = table.scan(selected_fields=tuple(self.primary_key)).to_arrow_batch_reader()
        return schema, (batch.select(self.primary_key).cast(schema) for batch in reader)

    def _publish(self, head: Head, request: CommitRequest) -> tuple[CommitResult, Head]:
        """One transaction: what the write mode removes (merge: the files holding a written or deleted key,
        rewritten without those rows; overwrite: everything), the new files, and the state."""
        table = self.table
        assert table is not None
        props = {STATE_PROPERTY: request.state, COMMIT_ID_PROPERTY: request.commit_id, **request.properties}
        change = rewrite.Rewrite()
        keys = request.pending.key_table() if self.merges_by_key and not request.reset else None
        if keys is not None and keys.num_rows and table.current_snapshot() is not None:
            change = rewrite.rewrite(table, keys, self.primary_key, write_uuid=self._write_uuid,
                                     counter=self._counter)
        tx = table.transaction()
        if not request.reset and self._replaces_all_now and table.current_snapshot() is not None:
            tx.delete(AlwaysTrue(), snapshot_properties=props)
        try:
            rewrite.stage_overwrite(tx, change, request.pending.files, props)
            committed = tx.commit_transaction()
        except CommitFailedException as exc:  # did not land; the table moved under us
            self._discard(change.added)
            self.table = self.catalog.load_table(self.identifier)
            raise CommitConflict(" ".join(str(exc).split())) from None
        except Exception as exc:
            snapshot_id = self._landed(request.commit_id)
            if snapshot_id is None:
                self._discard(change.added)
                if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    raise DativoError(f"Iceberg commit to {self.identifier} failed: {exc}") from exc
                self.table = self.catalog.load_table(self.identifier)  # SQLite refused the write lock
                raise CommitConflict(" ".join(str(exc).split())) from None
        else:
            snapshot_id = _snapshot_with(committed, request.commit_id)
            self.table = committed
        result = CommitResult(snapshot_id, request.pending.rows, len(request.pending.files))
        return result, Head(snapshot_id, request.state)

    def _landed(self, commit_id: str) -> int | None:
        """The snapshot id of this commit if it landed despite an error; raises ``CommitOutcomeUnknown``."""
        try:
            table = self.catalog.load_table(self.identifier)
        except Exception as exc:
            raise CommitOutcomeUnknown(" ".join(str(exc).split())[:200]) from None
        for snap in table.snapshots():
            if (snap.summary.additional_properties.get(COMMIT_ID_PROPERTY) if snap.summary else None) == commit_id:
                self.table = table
                return snap.snapshot_id
        return None

    def _discard(self, files: list[Any]) -> None:
        table = self.table
        if table is None:
            return
        for data_file in files:
            try:
                table.io.delete(data_file.file_path)
            except Exception:  # best effort: an orphan file is harmless
                log.debug("could not delete orphan file %s", data_file.file_path)

    def _describe(self, file: Any) -> dict[str, Any]:
        return {"path": file.file_path, "rows": file.record_count}

    def _undescribe(self, description: dict[str, Any]) -> Any:
        table = self._open_table()
        return parquet_file_to_data_file(table.io, table.metadata, str(description["path"]))

    def recent_properties(self, limit: int) -> list[dict[str, str]]:
        table = self.load()  # fresh: another run may have committed since
        if table is None:
            return []
        snaps = sorted(table.snapshots(), key=lambda snap: snap.timestamp_ms, reverse=True)[:limit]
        return [dict(snap.summary.additional_properties) if snap.summary else {} for snap in snaps]

def _snapshot_state(snap: Any) -> str | None:
    return snap.summary.additional_properties.get(STATE_PROPERTY) if snap is not None and snap.summary else None


def _snapshot_with(table: Table, commit_id: str) -> int:
    """The id of the snapshot carrying this commit id (the head, as pyiceberg's own retries are off)."""
    for snap in reversed(table.snapshots()):
        if snap.summary is not None and snap.summary.additional_properties.get(COMMIT_ID_PROPERTY) == commit_id:
            return snap.snapshot_id
    head = table.current_snapshot()
    assert head is not None
    return head.snapshot_id
