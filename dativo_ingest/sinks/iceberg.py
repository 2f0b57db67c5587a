"""Iceberg sink: data files are written as rows arrive, and committed together with the state.

A commit is one Iceberg transaction: (for ``merge``) a delete of the keys being written, (for
``overwrite``) a delete of everything, then a fast append of the data files written since the last
commit, whose snapshot summary carries the state envelope under ``dativo.state``. A crash before
the commit leaves only unreferenced files; a crash after it leaves data and state together.
"""

from __future__ import annotations

import itertools
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, And, BooleanExpression, EqualTo, In, Or
from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
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

from dativo_ingest.errors import ConfigError, DativoError

log = logging.getLogger(__name__)

STATE_PROPERTY = "dativo.state"
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


@dataclass
class CommitResult:
    snapshot_id: int | None
    rows: int
    files: int


@dataclass
class _Pending:
    files: list[DataFile] = field(default_factory=list)
    rows: int = 0
    keys: list[pa.Table] = field(default_factory=list)
    deletes: int = 0


class IcebergSink:
    """Writes one Iceberg table; ``write`` stages data files, ``commit`` makes them visible with state."""

    def __init__(
        self,
        catalog: Catalog,
        identifier: str,
        schema: pa.Schema,
        *,
        partitioning: Sequence[str] = (),
        primary_key: Sequence[str] = (),
        write_mode: str = "append",
        properties: dict[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.identifier = identifier
        self.schema = schema
        self.partitioning = list(partitioning)
        self.primary_key = list(primary_key)
        self.write_mode = write_mode
        self.properties = properties or {}
        self.table: Table | None = None
        self._pending = _Pending()
        self._write_uuid = uuid.uuid4()
        self._counter = itertools.count(0)
        self._committed_once = False
        self._opened = False
        self._checked_schema: pa.Schema | None = None

    # -- table -------------------------------------------------------------------------------
    def load(self) -> Table | None:
        """The existing table, or None (nothing is created)."""
        try:
            self.table = self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            self.table = None
        return self.table

    def current_state(self) -> str | None:
        """The ``dativo.state`` JSON of the table's current snapshot, if any."""
        table = self.table if self.table is not None else self.load()
        if table is None:
            return None
        snap = table.current_snapshot()
        if snap is None:
            return None
        return snap.summary.additional_properties.get(STATE_PROPERTY) if snap.summary else None

    def open(self) -> Table:
        """Load the table, creating it (schema + partition spec) or adding new asset columns.

        Called on the first write or commit, so a run that fails before it creates nothing."""
        if self._opened and self.table is not None:
            return self.table
        namespace = self.identifier.rsplit(".", 1)[0]
        self.catalog.create_namespace_if_not_exists(namespace)
        if self.load() is None:
            with self.catalog.create_table_transaction(
                self.identifier, schema=self.schema, properties=self.properties
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
            self.table = self.catalog.load_table(self.identifier)
            log.info("created Iceberg table %s", self.identifier)
        else:
            assert self.table is not None
            have = set(self.table.schema().column_names)
            new = [f for f in self.schema if f.name not in have]
            if new:
                with self.table.update_schema() as update:
                    update.union_by_name(pa.schema(new))
                self.table = self.catalog.load_table(self.identifier)
                log.info("added columns %s to %s", [f.name for f in new], self.identifier)
        self._opened = True
        return self.table

    # -- write / commit ----------------------------------------------------------------------
    def write(self, data: pa.Table) -> None:
        """Write data files for these rows now; they become visible only at ``commit``."""
        if data.num_rows == 0:
            return
        table = self.open()
        if self._checked_schema is None or not self._checked_schema.equals(data.schema):
            _check_pyarrow_schema_compatible(
                table.metadata.schema(), provided_schema=data.schema, format_version=table.metadata.format_version
            )
            self._checked_schema = data.schema
        files = _dataframe_to_data_files(
            table_metadata=table.metadata, df=data, io=table.io, write_uuid=self._write_uuid, counter=self._counter
        )
        self._pending.files.extend(files)
        self._pending.rows += data.num_rows
        if self.write_mode == "merge" and self.primary_key:
            self._pending.keys.append(data.select(self.primary_key))

    def current_keys(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The primary-key columns of every row the table holds now, streamed (nothing if no table yet)."""
        table = self.table if self.table is not None else self.load()
        schema = pa.schema([self.schema.field(k) for k in self.primary_key])
        if table is None or table.current_snapshot() is None:
            return schema, iter(())
        reader = table.scan(selected_fields=tuple(self.primary_key)).to_arrow_batch_reader()
        return schema, (batch.select(self.primary_key).cast(schema) for batch in reader)

    def delete_keys(self, keys: pa.Table) -> None:
        """Delete the rows with these primary keys in the next commit (rows gone from the source; merge only)."""
        if keys.num_rows and self.write_mode == "merge" and self.primary_key:
            self._pending.keys.append(keys.select(self.primary_key))
            self._pending.deletes += keys.num_rows

    @property
    def pending_rows(self) -> int:
        return self._pending.rows

    @property
    def pending_deletes(self) -> int:
        return self._pending.deletes

    def commit(self, state_json: str, extra_properties: dict[str, str] | None = None) -> CommitResult:
        """One transaction: deletes required by the write mode, the new files, and the state."""
        table = self.open()
        props = {STATE_PROPERTY: state_json, **(extra_properties or {})}
        pending, self._pending = self._pending, _Pending()
        tx = table.transaction()
        delete_filter = self._delete_filter(table, pending)
        if delete_filter is not None:
            tx.delete(delete_filter, snapshot_properties=props)
        with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
            for data_file in pending.files:
                append.append_data_file(data_file)
        try:
            self.table = tx.commit_transaction()
        except Exception as exc:  # the commit is the only step that publishes anything
            pending_paths = [f.file_path for f in pending.files]
            self._delete_files(table, pending_paths)
            raise DativoError(f"Iceberg commit to {self.identifier} failed: {exc}") from exc
        self._committed_once = True
        snap = self.table.current_snapshot()
        return CommitResult(snap.snapshot_id if snap else None, pending.rows, len(pending.files))

    def abort(self) -> None:
        """Delete the data files written since the last commit (they are referenced by nothing)."""
        pending, self._pending = self._pending, _Pending()
        if self.table is not None and pending.files:
            self._delete_files(self.table, [f.file_path for f in pending.files])

    # -- helpers -----------------------------------------------------------------------------
    def _delete_filter(self, table: Table, pending: _Pending) -> BooleanExpression | None:
        if table.current_snapshot() is None:
            return None
        if self.write_mode == "overwrite":
            # full refresh: replace everything once per run, then append
            return None if self._committed_once else AlwaysTrue()
        if self.write_mode == "merge" and self.primary_key and pending.keys:
            keys = pa.concat_tables(pending.keys)
            return key_filter(keys, self.primary_key) if keys.num_rows else None
        return None

    @staticmethod
    def _delete_files(table: Table, paths: list[str]) -> None:
        for path in paths:
            try:
                table.io.delete(path)
            except Exception:  # best effort: an orphan file is harmless
                log.debug("could not delete orphan file %s", path)


def key_filter(keys: pa.Table, columns: Sequence[str]) -> BooleanExpression:
    """An Iceberg filter matching exactly the given primary-key values."""
    if len(columns) == 1:
        values = pc.unique(keys.column(columns[0]).combine_chunks()).drop_null().to_pylist()
        return In(columns[0], values)
    unique = keys.group_by(list(columns)).aggregate([]).to_pylist()
    expr: BooleanExpression = AlwaysFalse()
    for row in unique:
        clause: BooleanExpression | None = None
        for col in columns:
            eq = EqualTo(col, row[col])
            clause = eq if clause is None else And(clause, eq)
        assert clause is not None
        expr = Or(expr, clause)
    return expr
