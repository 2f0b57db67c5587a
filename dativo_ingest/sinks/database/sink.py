"""Database targets (``postgres``, ``mysql``): the asset's table in a database, committed with its state.

Layout: the table ``<schema>.<asset>`` (``target.schema``, default the tenant id; in MySQL the schema is a
database), its quarantine ``<schema>.<asset>__quarantine``, and ``<schema>._dativo_state``: one row per commit
of each table (``tenant``, ``table_name``, ``version``), holding the state envelope and the commit's properties
(the newest ``KEEP_VERSIONS`` are kept). Columns are typed from the asset, the system columns included; a new
asset field becomes a new column.

``write`` bulk-loads rows into a staging table (the dialect's fastest path); ``commit`` is one database
transaction: insert the next ``_dativo_state`` row, then (overwrite, first commit) empty the table, (merge)
delete the keys gone from the source and ``INSERT … SELECT`` the staged rows replacing those with the same
primary key, else append them. Rows and state land together or not at all — a run killed at any point leaves
the last commit. Two writers that publish on the same version collide on the state row's key: the loser rolls
back and the commit loop (``sinks/base.py``) decides, as for every sink.

Staging: the data table's rows wait in a temporary table (it dies with the session, so a killed run leaves
nothing); the quarantine's in a real ``_dativo_pending_<id>`` table, because the quarantine is published by a
second commit that a later run may have to finish (``Sink.commit_once``). A run killed before its data commit
leaves that table behind (it is never read; drop it).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.errors import ConfigError, DativoError, InfrastructureError
from dativo_ingest.sinks.base import (
    CommitConflict,
    CommitOutcomeUnknown,
    CommitRequest,
    CommitResult,
    ConcurrentCommitError,
    Head,
    Sink,
)
from dativo_ingest.sinks.database.dialect import PARAM, Dialect, check_name
from dativo_ingest.sinks.database.mysql import Mysql
from dativo_ingest.sinks.database.postgres import Postgres
from dativo_ingest.sinks.layout import QUARANTINE_SUFFIX, quarantine_name
from dativo_ingest.sinks.promotion import PROMOTIONS, reconcile
from dativo_ingest.stage.stage import asset_fields

log = logging.getLogger(__name__)

DIALECTS: dict[str, type[Dialect]] = {"postgres": Postgres, "mysql": Mysql}
DATABASE_TARGETS = tuple(DIALECTS)
STATE_TABLE = "_dativo_state"
RUN_ID = "_dativo_run_id"
#: commits of a table kept in the state table (the newest; ``recent_properties`` reads them)
KEEP_VERSIONS = 20
#: a quarantine's pending table older than this was left by a killed run: the next run drops it
PENDING_MAX_AGE_S = 7 * 24 * 3600
PENDING = re.compile(r"^_dativo_pending_(\d+)_[0-9a-f]+$")


@dataclass
class Staged:
    """A staging table holding rows written since the last commit."""

    table: str
    temporary: bool
    rows: int = 0
    #: the rows went straight into the target table, in the transaction the commit ends (append)
    direct: bool = False


class DatabaseSink(Sink):
    """One table of a database; ``write`` stages rows, ``commit`` moves them into the table with the state."""

    def __init__(self, dialect: Dialect, schema_name: str, table: str, schema: pa.Schema, *, tenant: str,
                 primary_key: Sequence[str] = (), write_mode: str = "append", json_columns: Sequence[str] = (),
                 required: Sequence[str] = (), temporary_staging: bool = True, job_path: Path | None = None) -> None:
        super().__init__(f"{dialect.describe()}/{schema_name}.{table}", schema, primary_key=primary_key,
                         write_mode=write_mode)
        self.dialect = dialect
        self.schema_name = schema_name
        self.table = table
        self.tenant = tenant
        self.json_columns = set(json_columns)
        #: columns created NOT NULL (the asset's required fields and its key: the stage never lets a null through)
        self.not_null = set(required) | set(primary_key)
        self.temporary_staging = temporary_staging
        self.job_path = job_path
        self.target = dialect.qualified(schema_name, table)
        self.state_table = dialect.qualified(schema_name, STATE_TABLE)
        self._con: Any = None
        self._opened = False
        self._staged: Staged | None = None
        self._deletes: Staged | None = None
        #: append loads straight into the table inside the commit's transaction (None: not decided yet)
        self._direct: bool | None = None
        #: rows are loaded in the open transaction, not committed yet
        self._in_flight = False
        #: the open transaction was rolled back with rows loaded in it
        self._lost = False
        self._run_ids: set[str] = set()

    # -- connection ------------------------------------------------------------------------------
    @property
    def con(self) -> Any:
        """The sink's connection (opened on first use; its staging tables live in it)."""
        if self._con is None:
            self._con = self.dialect.connect()
        return self._con

    def _sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.dialect.execute(self.con, sql, params)

    def _fail(self, action: str, exc: Exception) -> DativoError:
        first = (" ".join(str(exc).split()) or type(exc).__name__)[:240]
        return InfrastructureError(f"{self.identifier}: {action} failed: {first}")

    def _rollback(self) -> None:
        if self._in_flight:
            self._in_flight, self._lost = False, True
        try:
            self.con.rollback()
        except Exception:  # the connection may be what failed
            log.debug("rollback failed on %s", self.identifier)

    def _end_read(self) -> None:
        """End the transaction a read opened (not while it holds rows to commit)."""
        if not self._in_flight:
            self.con.rollback()

    # -- target ----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """The database answers, with the connection's credentials (nothing is created)."""
        con = self.dialect.connect()
        try:
            self.dialect.execute(con, "SELECT 1")
        finally:
            con.close()

    def prepare(self) -> None:
        """Create the schema and the state table (two first runs would race to)."""
        self._create_shared()

    def _create_shared(self) -> None:
        key = self.dialect.column_type(pa.string(), key=True)
        state = (f"CREATE TABLE IF NOT EXISTS {self.state_table} (tenant {key} NOT NULL, table_name {key} NOT NULL, "
                 f"version BIGINT NOT NULL, state {self.dialect.column_type(pa.string())} NOT NULL, "
                 f"commit_id {key} NOT NULL, properties {self.dialect.column_type(pa.string())} NOT NULL, "
                 f"committed_at {self.dialect.column_type(pa.timestamp('us', tz='UTC'))} NOT NULL, "
                 f"PRIMARY KEY (tenant, table_name, version))")
        self._ddl("creating the schema and the state table", [self.dialect.create_schema_sql(self.schema_name), state])

    def _ddl(self, action: str, statements: list[str]) -> None:
        for attempt in (1, 2):  # IF NOT EXISTS still races in PostgreSQL's catalog: once more sees theirs
            try:
                for statement in statements:
                    self._sql(statement)
                self.con.commit()
                return
            except DativoError:
                raise
            except Exception as exc:
                self._rollback()
                if attempt == 2 or not self.dialect.is_conflict(exc):
                    raise self._fail(action, exc) from None

    def _columns(self) -> list[str]:
        return list(self._column_info())

    def _column_info(self) -> dict[str, tuple[pa.DataType | None, bool]]:
        """{column: (its Arrow type when numeric, whether it is NOT NULL)} of the table as it is now."""
        rows = self._sql(self.dialect.columns_sql(), [self.table, self.schema_name])
        self._end_read()
        return {str(name): (self.dialect.arrow_type(str(kind), precision, scale), str(nullable).upper() == "NO")
                for name, kind, precision, scale, nullable in rows}

    def _widen(self, info: dict[str, tuple[pa.DataType | None, bool]]) -> None:
        """Widen the columns whose asset type is now wider (the promotions Iceberg allows); refuse, in one line,
        a type no promotion reaches (before any row moves)."""
        result = reconcile({name: kind for name, (kind, _) in info.items() if kind is not None}, self.schema)
        for name, have, want in result.refused[:1]:
            raise ConfigError(self.job_path, f"{self.identifier}: column '{name}' is {have} in the table but the "
                              f"asset now declares {want}; a column can only widen ({PROMOTIONS})",
                              field="schema", fix="keep the column's type in the asset, or give the asset a new name "
                                                  "(a new table) and load it again")
        if result.widen:
            self._ddl(f"widening columns of {self.target}",
                      [self.dialect.alter_type_sql(self.target, name, self._type(self.schema.field(name)),
                                                   not_null=info[name][1]) for name in result.widen])
            log.info("widened columns %s of %s", sorted(result.widen), self.identifier)

    def open(self) -> None:
        """Create the schema, the state table and the table (or add the asset's new columns)."""
        if self._opened:
            return
        self._create_shared()
        info = self._column_info()
        existing = list(info)
        if not existing:
            defs = [f"{self.dialect.quote(f.name)} {self._type(f)}" + (" NOT NULL" if f.name in self.not_null else "")
                    for f in self.schema]
            if self.primary_key and self.write_mode == "merge":  # append and overwrite keep duplicates, as Iceberg
                defs.append(f"PRIMARY KEY ({', '.join(self.dialect.quote(k) for k in self.primary_key)})")
            self._ddl(f"creating table {self.target}",
                      [f"CREATE TABLE IF NOT EXISTS {self.target} ({', '.join(defs)})"])
            log.info("created table %s", self.identifier)
        else:
            self._check_merge_key()
            self._widen(info)
            new = [f for f in self.schema if f.name not in existing]
            if new:
                self._ddl(f"adding columns to {self.target}",
                          [f"ALTER TABLE {self.target} ADD COLUMN {self.dialect.quote(f.name)} {self._type(f)}"
                           for f in new])
                log.info("added columns %s to %s", [f.name for f in new], self.identifier)
        if not self.temporary_staging:
            self._drop_stale_pending()
        self._opened = True

    def _drop_stale_pending(self) -> None:
        """Drop the pending tables of runs killed before their data commit (older than ``PENDING_MAX_AGE_S``: a
        younger one may belong to a run still going, or hold the quarantine its next run completes)."""
        rows = self._sql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = {PARAM} "
                         f"AND table_name LIKE {PARAM}", [self.schema_name, "_dativo_pending_%"])
        self._end_read()
        now = time.time()
        for (name,) in rows:
            match = PENDING.match(str(name))
            if match and now - int(match.group(1)) > PENDING_MAX_AGE_S:
                self._cleanup([Staged(str(name), temporary=False)])
                log.info("dropped %s.%s, left by a run killed before its commit", self.schema_name, name)

    def _check_merge_key(self) -> None:
        """A merge into an existing table needs a unique key on exactly the asset's primary key (the upsert's
        conflict target); a table first written by an append has none."""
        if not self.merges_by_key:
            return
        indexes: dict[str, set[str]] = {}
        for name, column in self._sql(self.dialect.unique_keys_sql(), [self.schema_name, self.table]):
            indexes.setdefault(str(name), set()).add(str(column))
        self._end_read()
        if set(self.primary_key) not in indexes.values():
            columns = ", ".join(self.dialect.quote(k) for k in self.primary_key)
            raise ConfigError(self.job_path, f"{self.identifier} has no primary key on ({', '.join(self.primary_key)})"
                              f", which write_mode merge upserts by (the table was first written by another mode)",
                              field="target.write_mode",
                              fix=f"ALTER TABLE {self.target} ADD PRIMARY KEY ({columns}) once duplicates are gone, "
                                  f"or drop the table to let the next run create it")

    def _type(self, f: pa.Field) -> str:
        return self.dialect.column_type(f.type, json=f.name in self.json_columns, key=f.name in self.primary_key)

    # -- state -----------------------------------------------------------------------------------
    def _read_state(self, sql: str, what: str) -> list[Any]:
        """Rows of a query on this table's state rows (``tenant``, ``table_name`` bound); none when there is no
        state table yet."""
        try:
            rows = self._sql(sql, [self.tenant, self.table])
            self._end_read()
        except DativoError:
            raise
        except Exception as exc:
            self._rollback()
            if self.dialect.is_missing_table(exc):
                return []
            raise self._fail(what, exc) from None
        return list(rows or [])

    def _head(self) -> Head:
        rows = self._read_state(f"SELECT version, state, commit_id FROM {self.state_table} WHERE tenant = {PARAM} "
                                f"AND table_name = {PARAM} ORDER BY version DESC LIMIT 1",
                                "reading the committed state")
        if not rows:
            return Head(None, None)
        version, state, commit_id = rows[0]
        return Head(int(version), str(state), None, str(commit_id))

    def recent_properties(self, limit: int) -> list[dict[str, str]]:
        """The properties of the newest ``limit`` commits of this table, newest first."""
        rows = self._read_state(f"SELECT properties FROM {self.state_table} WHERE tenant = {PARAM} AND table_name = "
                                f"{PARAM} ORDER BY version DESC LIMIT {int(limit)}", "reading the commit history")
        return [dict(orjson.loads(r[0])) for r in rows]

    # -- write -----------------------------------------------------------------------------------
    def write(self, data: pa.Table) -> None:
        """Bulk-load these rows into the staging table; they reach the table at the next ``commit``."""
        if data.num_rows == 0:
            return
        self.open()
        if self._direct is None:
            self._direct = (self.temporary_staging and self.write_mode == "append"
                            and self.dialect.loads_into(self.con, self.schema_name, self.table, self.schema))
            self._end_read()
        if self._staged is None:
            if self._direct:
                self._staged = Staged(self.table, temporary=False, direct=True)
            else:
                self._staged = self._new_stage("stage" if self.temporary_staging else "pending", self.schema,
                                               temporary=self.temporary_staging)
            self._pending.files.append(self._staged)
        data = data.select(self.schema.names).cast(self.schema)
        if self._direct and RUN_ID in data.column_names:
            self._run_ids.update(v for v in pc.unique(data.column(RUN_ID)).to_pylist() if v is not None)
        self._load(self._staged, data)
        self._pending.rows += data.num_rows

    def delete_keys(self, keys: pa.Table) -> None:
        """Delete the rows with these primary keys in the next commit (merge only)."""
        if not keys.num_rows or not self.merges_by_key:
            return
        self.open()
        key_schema = pa.schema([self.schema.field(k) for k in self.primary_key])
        if self._deletes is None:
            self._deletes = self._new_stage("deletes", key_schema, temporary=True)
        self._load(self._deletes, keys.select(self.primary_key).cast(key_schema))
        self._pending.deletes += keys.num_rows

    def _new_stage(self, kind: str, schema: pa.Schema, *, temporary: bool) -> Staged:
        staged = Staged(f"_dativo_{kind}_{int(time.time())}_{uuid.uuid4().hex[:8]}", temporary)
        columns = ", ".join(f"{self.dialect.quote(f.name)} {self.dialect.stage_type(f.type)}" for f in schema)
        name = self.dialect.stage_name(self.schema_name, staged.table, temporary=temporary)
        self._ddl("creating a staging table", [self.dialect.create_stage_sql(name, columns, temporary=temporary)])
        return staged

    def _load(self, staged: Staged, data: pa.Table) -> None:
        try:
            self.dialect.load(self.con, self.schema_name, staged.table, data, temporary=staged.temporary)
            if staged.direct:
                self._in_flight = True  # committed with the state, by ``_publish``
            else:
                self.con.commit()
        except DativoError:
            raise
        except Exception as exc:
            self._rollback()
            raise self._fail("loading rows into a staging table", exc) from None
        staged.rows += data.num_rows

    def current_keys(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The primary-key columns of every row the table holds now, streamed (nothing before the table exists)."""
        schema = pa.schema([self.schema.field(k) for k in self.primary_key])
        if not self._columns():
            return schema, iter(())
        sql = f"SELECT {', '.join(self.dialect.quote(k) for k in self.primary_key)} FROM {self.target}"
        return schema, self.dialect.stream(self.con, sql, schema)

    # -- commit ----------------------------------------------------------------------------------
    def _publish(self, head: Head, request: CommitRequest) -> tuple[CommitResult, Head]:
        """One transaction: the state row, what the write mode removes, the staged rows."""
        if self._lost:
            raise DativoError(f"{self.identifier}: the transaction holding this run's rows was rolled back (the "
                              f"connection failed); nothing of it was committed — run the job again")
        version = (head.version or 0) + 1
        staged: list[Staged] = list(request.pending.files)
        direct = any(stage.direct for stage in staged)
        step = "state"  # a duplicate state row: another run committed this version first
        try:
            self._sql(f"INSERT INTO {self.state_table} (tenant, table_name, version, state, commit_id, properties, "
                      f"committed_at) VALUES ({PARAM}, {PARAM}, {PARAM}, {PARAM}, {PARAM}, {PARAM}, "
                      f"CURRENT_TIMESTAMP)",
                      [self.tenant, self.table, version, request.state, request.commit_id,
                       orjson.dumps(request.properties).decode()])
            step = "data"
            if not request.reset and self._replaces_all_now:
                self._sql(*self._clear_all(direct))
            if not request.reset and self._deletes is not None and self.merges_by_key:
                keys = self.dialect.stage_name(self.schema_name, self._deletes.table, temporary=True)
                self._sql(self.dialect.delete_keys_sql(self.target, keys, self.primary_key))
            for stage in staged:
                if not stage.direct:
                    step = f"staged {stage.table}"
                    self._sql(self._insert_sql(stage, merge=self.merges_by_key and not request.reset))
            step = "data"
            self._sql(f"DELETE FROM {self.state_table} WHERE tenant = {PARAM} AND table_name = {PARAM} "
                      f"AND version <= {PARAM}", [self.tenant, self.table, version - KEEP_VERSIONS])
            step = "commit"
            self.con.commit()
            self._in_flight = False
        except DativoError:
            self._rollback()
            raise
        except Exception as exc:
            self._rollback()
            if self.dialect.is_conflict(exc) and (step == "state" or not self.dialect.is_duplicate(exc)):
                if direct:  # the rows went with the rolled-back transaction: this commit cannot be tried again
                    raise ConcurrentCommitError(f"{self.identifier}: another run committed version {version} "
                                                f"first; nothing of this run's commit was written — run the job "
                                                f"again") from None
                raise CommitConflict(f"another run committed version {version} first") from None
            if request.reset and step.startswith("staged ") and self.dialect.is_missing_table(exc):  # commit_once
                raise FileNotFoundError(f"{self.identifier}: {step.split(' ', 1)[1]} is gone") from None
            if step == "commit" and self._landed(request.commit_id):
                pass  # the commit went through before the connection failed
            else:
                raise self._fail("the commit", exc) from None
        self._cleanup(staged)
        return (CommitResult(version, request.pending.rows, len(staged)),
                Head(version, request.state, None, request.commit_id))

    def _clear_all(self, direct: bool) -> tuple[str, list[Any]]:
        """The statement emptying the table for an overwrite: all rows but this run's when they went in
        directly (an append that a Singer ACTIVATE_VERSION turned into a full replace)."""
        if not direct:
            return self.dialect.clear_sql(self.target), []
        ids = sorted(self._run_ids)
        column = self.dialect.quote(RUN_ID)
        where = f" WHERE {column} IS NULL OR {column} NOT IN ({', '.join([PARAM] * len(ids))})" if ids else ""
        return f"DELETE FROM {self.target}{where}", ids

    def _insert_sql(self, stage: Staged, *, merge: bool) -> str:
        names = [f.name for f in self.schema]
        exprs = [self.dialect.cast_json(self.dialect.quote(n)) if n in self.json_columns else self.dialect.quote(n)
                 for n in names]
        source = self.dialect.stage_name(self.schema_name, stage.table, temporary=stage.temporary)
        select = f"SELECT {', '.join(exprs)} FROM {source}"
        if merge:
            return self.dialect.upsert_sql(self.target, names, select, self.primary_key)
        return f"INSERT INTO {self.target} ({', '.join(self.dialect.quote(n) for n in names)}) {select}"

    def _landed(self, commit_id: str) -> bool:
        """Whether a commit whose COMMIT failed is there (asked on a new connection); ``CommitOutcomeUnknown``
        when the database cannot be asked."""
        try:
            con = self.dialect.connect()
            try:
                rows = self.dialect.execute(con, f"SELECT 1 FROM {self.state_table} WHERE tenant = {PARAM} AND "
                                                 f"table_name = {PARAM} AND commit_id = {PARAM}",
                                            [self.tenant, self.table, commit_id])
            finally:
                con.close()
        except Exception as exc:
            raise CommitOutcomeUnknown(" ".join(str(exc).split())[:200]) from None
        self._con = None  # the old connection (and its staging tables) is gone
        self._staged = self._deletes = None
        return bool(rows)

    def _cleanup(self, staged: list[Staged]) -> None:
        """Drop staging tables whose rows were committed (or are abandoned)."""
        if any(stage.direct for stage in staged):
            if self._in_flight:
                self._rollback()  # abandoned rows loaded straight into the table
            self._lost = False
        gone = [stage for stage in staged if not stage.direct] + ([self._deletes] if self._deletes is not None else [])
        self._deletes = None
        if self._staged is not None and any(s is self._staged for s in staged):
            self._staged = None
        if self._con is None:
            return
        for stage in gone:
            try:
                self._sql(self.dialect.drop_sql(self.dialect.stage_name(self.schema_name, stage.table,
                                                                        temporary=stage.temporary),
                                                temporary=stage.temporary))
                self.con.commit()
            except Exception:  # best effort: a staging table is never read again
                self._rollback()
                log.debug("could not drop staging table %s", stage.table)

    def _discard(self, files: list[Any]) -> None:
        self._cleanup(list(files))

    def abort(self) -> None:
        """Drop the staging tables of rows not committed."""
        pending = list(self._pending.files)
        super().abort()
        if not pending and self._deletes is not None:
            self._cleanup([])

    def close(self) -> None:
        """Close the connection (its temporary staging tables go with it; uncommitted rows are rolled back)."""
        if self._con is None:
            return
        con, self._con = self._con, None
        self._in_flight = False
        self._staged = self._deletes = None
        try:
            con.rollback()
            con.close()
        except Exception:  # closing a broken connection
            log.debug("could not close the connection of %s", self.identifier)

    def _describe(self, file: Any) -> dict[str, Any]:
        return {"table": file.table, "temporary": file.temporary, "rows": file.rows}

    def _undescribe(self, description: dict[str, Any]) -> Any:
        return Staged(str(description["table"]), bool(description.get("temporary")), int(description.get("rows") or 0))


def database_sink(plan: JobPlan, *, quarantine: pa.Schema | None, data_schema: pa.Schema) -> DatabaseSink:
    """The database sink of a job's table (or, with ``quarantine``, of its quarantine table)."""
    dialect = DIALECTS[plan.target_connector](plan.target.connection_values)
    schema_name = check_name(str(plan.target.db_schema or plan.tenant_id), field="target.schema",
                             dialect=dialect, job_path=plan.job_path)
    table = check_name(plan.asset.name, field="asset name", dialect=dialect, job_path=plan.asset_path,
                       suffix=QUARANTINE_SUFFIX)
    if quarantine is not None:
        return DatabaseSink(dialect, schema_name, quarantine_name(table), quarantine, tenant=plan.tenant_id,
                            temporary_staging=False, job_path=plan.job_path)
    json_columns = [f.name for f in asset_fields(plan.asset) if f.type.duckdb == "JSON"]
    return DatabaseSink(dialect, schema_name, table, data_schema, tenant=plan.tenant_id,
                        primary_key=plan.asset.primary_key, write_mode=plan.write_mode, json_columns=json_columns,
                        required=sorted(plan.asset.required_names), job_path=plan.job_path)


__all__ = ["DATABASE_TARGETS", "STATE_TABLE", "DatabaseSink", "database_sink"]
