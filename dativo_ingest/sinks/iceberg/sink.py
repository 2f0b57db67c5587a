"""Iceberg sink: data files are written as rows arrive, and committed together with the state.

A commit is one Iceberg transaction: (for ``merge``) a delete of the keys being written, (for
``overwrite``) a delete of everything, then a fast append of the data files written since the last
commit, whose snapshot summary carries the state envelope under ``dativo.state``. A crash before
the commit leaves only unreferenced files; a crash after it leaves data and state together.

Concurrent writers: a run's state was computed from the snapshot it started from (its *base*). When
another commit lands after that base, pyiceberg's own blind retry (which would append the same rows
twice, or put an older cursor back) is switched off, and the sink decides: it re-applies its
delete+append on the new head only in ``merge`` mode and only when its state covers the other
commit's (same cursor field and a cursor not behind theirs, or a superset of their files); otherwise
it fails with one line saying another run committed first, having published nothing of this commit.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThanOrEqual,
    Or,
)
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
from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)

STATE_PROPERTY = "dativo.state"
#: a unique id per commit in the snapshot summary: tells whether a commit whose outcome is unknown landed
COMMIT_ID_PROPERTY = "dativo.commit_id"
#: pyiceberg would re-apply a conflicting commit blindly (duplicating appends); the sink decides instead
NO_BLIND_RETRY = {"commit.retry.num-retries": "0"}
COMMIT_ATTEMPTS = 6
#: a merge deletes a run of at least this many consecutive integer keys with one range predicate ...
KEY_RANGE_MIN = 16
#: ... when there are at most this many such runs (pyiceberg binds an IN list value by value, per visitor:
#: 65k keys cost ~10 s as IN, 0.7 s as a range)
KEY_RANGES_MAX = 64
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


class ConcurrentCommitError(DativoError):
    """Another writer committed to the table first and this commit cannot safely be re-applied on top."""


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
        #: the snapshot (and its state) this writer's state was computed from; None = empty table
        self._base_snapshot_id: int | None = None
        self._base_state: str | None = None
        self._pinned = False

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
        self._pin(table)
        return self._base_state

    def _pin(self, table: Table | None) -> None:
        """Remember the snapshot the caller's state comes from (once: later commits move it forward)."""
        if self._pinned:
            return
        snap = table.current_snapshot() if table is not None else None
        self._base_snapshot_id = snap.snapshot_id if snap is not None else None
        self._base_state = _snapshot_state(snap)
        self._pinned = True

    def open(self) -> Table:
        """Load the table, creating it (schema + partition spec) or adding new asset columns.

        Called on the first write or commit, so a run that fails before it creates nothing."""
        if self._opened and self.table is not None:
            return self.table
        namespace = self.identifier.rsplit(".", 1)[0]
        try:
            self.catalog.create_namespace_if_not_exists(namespace)
        except Exception:  # another run created it at the same moment
            if not self.catalog.namespace_exists(namespace):
                raise
        if self.load() is None:
            self._pin(None)  # the caller's state (none) was computed from an empty table
            try:
                self._create()
            except (TableAlreadyExistsError, CommitFailedException):  # another run created it first: use theirs
                if self.load() is None:
                    raise
                log.info("%s was created by another run at the same time", self.identifier)
        table = self.load()
        assert table is not None
        self._pin(table)
        for _ in range(COMMIT_ATTEMPTS):  # metadata-only changes; a concurrent run may make the same ones
            new = [f for f in self.schema if f.name not in set(table.schema().column_names)]
            retries_off = all(table.properties.get(k) == v for k, v in NO_BLIND_RETRY.items())
            if not new and retries_off:
                break
            try:
                if new:
                    with table.update_schema() as update:
                        update.union_by_name(pa.schema(new))
                    log.info("added columns %s to %s", [f.name for f in new], self.identifier)
                else:
                    table.transaction().set_properties(NO_BLIND_RETRY).commit_transaction()
            except CommitFailedException:
                pass
            except Exception as exc:  # a catalog that refuses property updates: keep going, but say what it costs
                if new:
                    raise
                log.warning("%s: could not switch off pyiceberg's blind commit retries (%s); two runs at once may "
                            "then duplicate rows", self.identifier, " ".join(str(exc).split())[:200])
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
        log.info("created Iceberg table %s", self.identifier)

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
        """One transaction: deletes required by the write mode, the new files, and the state.

        On a conflict with another writer the commit is re-applied on the new head when that is provably
        correct (see the module docstring), else ``ConcurrentCommitError``; either way, a failure leaves
        nothing of this commit visible."""
        table = self.open()
        commit_id = uuid.uuid4().hex
        props = {STATE_PROPERTY: state_json, COMMIT_ID_PROPERTY: commit_id, **(extra_properties or {})}
        pending, self._pending = self._pending, _Pending()
        try:
            snapshot_id = self._commit_with_retries(table, pending, props, commit_id)
        except _OutcomeUnknown as exc:  # the files may be referenced now: keep them
            raise DativoError(f"Iceberg commit to {self.identifier}: outcome unknown ({exc}); `dativo_ingest "
                              f"state show` tells whether it landed — running the job again is safe") from None
        except Exception:  # nothing of this commit landed: its files are referenced by nothing
            self._delete_files(table, [f.file_path for f in pending.files])
            raise
        self._committed_once = True
        self._base_snapshot_id, self._base_state = snapshot_id, state_json
        return CommitResult(snapshot_id, pending.rows, len(pending.files))

    def _commit_with_retries(self, table: Table, pending: _Pending, props: dict[str, str], commit_id: str) -> int:
        """Commit; returns the new snapshot id. Raises when nothing landed, ``_OutcomeUnknown`` if unsure."""
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            head = table.current_snapshot()
            if (head.snapshot_id if head is not None else None) != self._base_snapshot_id:
                refusal = self._rebase_refusal(_snapshot_state(head), props[STATE_PROPERTY], pending)
                if refusal:
                    raise ConcurrentCommitError(
                        f"{self.identifier}: another run committed to the table first and this run's commit "
                        f"cannot be re-applied on top ({refusal}); nothing of it was written — run the job again "
                        f"to continue from what the other run committed")
                log.warning("%s: another run committed snapshot %s first; re-applying this commit on top of it",
                            self.identifier, head.snapshot_id if head is not None else None)
            tx = table.transaction()
            delete_filter = self._delete_filter(table, pending)
            if delete_filter is not None:
                tx.delete(delete_filter, snapshot_properties=props)
            with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                for data_file in pending.files:
                    append.append_data_file(data_file)
            try:
                committed = tx.commit_transaction()
            except CommitFailedException as exc:  # did not land; the table moved under us
                reason = " ".join(str(exc).split())
            except Exception as exc:
                landed = self._landed(commit_id)
                if landed is not None:
                    return landed
                if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                    raise DativoError(f"Iceberg commit to {self.identifier} failed: {exc}") from exc
                reason = " ".join(str(exc).split())  # SQLite refused the write lock: nothing was written
            else:
                return _snapshot_with(committed, commit_id)
            log.info("commit to %s conflicted (attempt %d/%d): %s", self.identifier, attempt, COMMIT_ATTEMPTS,
                     reason[:200])
            time.sleep(random.uniform(0.05, 0.1) * 2 ** attempt)
            table = self.catalog.load_table(self.identifier)
            self.table = table
        raise ConcurrentCommitError(f"{self.identifier}: the commit kept conflicting with other writers "
                                    f"({COMMIT_ATTEMPTS} attempts); nothing of it was written — run the job again")

    def _rebase_refusal(self, theirs_json: str | None, ours_json: str, pending: _Pending) -> str | None:
        """Why this commit may not be re-applied on a head another writer moved (None: it may).

        Re-applying is correct only for a merge by primary key whose state covers theirs: with cursors
        that advance as rows change, a run whose cursor is not behind the other's read every row the other
        wrote in the same or a newer version, so deleting its keys and appending its rows again loses
        nothing, duplicates nothing and keeps the newer cursor."""
        if self.write_mode != "merge" or not self.primary_key:
            return f"write mode {self.write_mode}: its rows would be appended twice or replace newer ones"
        if pending.deletes:
            return "the rows it deletes were computed against the table before the other commit"
        try:
            base, theirs, ours = (StateEnvelope.from_json(t) for t in (self._base_state, theirs_json, ours_json))
        except ValueError:
            return "the other commit's state cannot be read"
        assert ours is not None
        return ours.uncovered(theirs, base)

    def _landed(self, commit_id: str) -> int | None:
        """The snapshot id of this commit if it landed despite an error; raises ``_OutcomeUnknown``."""
        try:
            table = self.catalog.load_table(self.identifier)
        except Exception as exc:
            raise _OutcomeUnknown(" ".join(str(exc).split())[:200]) from None
        for snap in table.snapshots():
            if (snap.summary.additional_properties.get(COMMIT_ID_PROPERTY) if snap.summary else None) == commit_id:
                self.table = table
                return snap.snapshot_id
        return None

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


class _OutcomeUnknown(Exception):
    """The commit raised and the table could not be read back to tell whether it landed."""


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


def key_filter(keys: pa.Table, columns: Sequence[str]) -> BooleanExpression:
    """An Iceberg filter matching exactly the given primary-key values."""
    if len(columns) == 1:
        values = pc.unique(keys.column(columns[0]).combine_chunks()).drop_null()
        if pa.types.is_integer(values.type) and len(values) >= KEY_RANGE_MIN:
            return _integer_keys_filter(columns[0], values)
        return In(columns[0], values.to_pylist())
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


def _integer_keys_filter(column: str, values: pa.Array) -> BooleanExpression:
    """Distinct integer keys as ``lo <= k <= hi`` for each long run of consecutive values, IN for the rest."""
    ordered = values.take(pc.array_sort_indices(values))
    breaks = pc.indices_nonzero(pc.not_equal(pc.pairwise_diff(ordered), 1))  # where a new run starts
    starts = pa.concat_arrays([pa.array([0], pa.uint64()), breaks.cast(pa.uint64())])
    ends = pa.concat_arrays([breaks.cast(pa.uint64()), pa.array([len(ordered)], pa.uint64())])
    long = pc.greater_equal(pc.subtract(ends, starts), KEY_RANGE_MIN)
    count = pc.sum(long).as_py() or 0
    if count == 0 or count > KEY_RANGES_MAX:
        return In(column, ordered.to_pylist())
    expr: BooleanExpression = AlwaysFalse()
    covered = pa.array([False] * len(ordered))
    for start, end in zip(pc.filter(starts, long).to_pylist(), pc.filter(ends, long).to_pylist(), strict=True):
        lo, hi = ordered[start], ordered[end - 1]
        expr = Or(expr, And(GreaterThanOrEqual(column, lo.as_py()), LessThanOrEqual(column, hi.as_py())))
        covered = pc.or_(covered, pc.and_(pc.greater_equal(ordered, lo), pc.less_equal(ordered, hi)))
    rest = pc.filter(ordered, pc.invert(covered))
    return Or(expr, In(column, rest.to_pylist())) if len(rest) else expr
