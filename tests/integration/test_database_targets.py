"""``target_connector: postgres | mysql`` against the machine's PostgreSQL and MariaDB, through the CLI: every write
mode, the quarantine table, ``state show|reset``, names that would break unquoted SQL, and SIGKILL at every point
of a run (0 lost, 0 duplicated: the state row is committed in the same transaction as the rows)."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import cli, make_project, write_yaml

psycopg = pytest.importorskip("psycopg")
pymysql = pytest.importorskip("pymysql")
PG_URI = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Db:
    """One database server and a fresh schema in it (a database in MariaDB)."""

    kind: str
    schema: str

    def rows(self, statement: str) -> list[tuple]:
        if self.kind == "postgres":
            with psycopg.connect(PG_URI, autocommit=True) as con:
                cur = con.execute(statement)
                return cur.fetchall() if cur.description else []
        con = pymysql.connect(host="127.0.0.1", port=3306, user="root", init_command="SET time_zone='+00:00'")
        try:
            with con.cursor() as cur:
                cur.execute(statement)
                rows = list(cur.fetchall())
            con.commit()
            return rows
        finally:
            con.close()

    def q(self, name: str) -> str:
        if self.kind == "postgres":
            return '"' + name.replace('"', '""') + '"'
        return "`" + name.replace("`", "``") + "`"

    def table(self, name: str) -> str:
        return f"{self.q(self.schema)}.{self.q(name)}"

    def ids(self, name: str = "t") -> list[int]:
        return sorted(r[0] for r in self.rows(f"SELECT id FROM {self.table(name)}"))

    def column_types(self, name: str = "t") -> dict[str, str]:
        rows = self.rows(f"SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                         f"'{self.schema}' AND table_name = '{name}'")
        return {str(r[0]): str(r[1]).lower() for r in rows}

    def secrets(self) -> str:
        if self.kind == "postgres":
            return "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=5432\nPOSTGRES_DB=test\nPOSTGRES_USER=postgres\n"
        return "MYSQL_HOST=127.0.0.1\nMYSQL_PORT=3306\nMYSQL_USER=root\n"

    def drop(self) -> None:
        self.rows(f"DROP SCHEMA IF EXISTS {self.q(self.schema)} CASCADE" if self.kind == "postgres"
                  else f"DROP DATABASE IF EXISTS {self.q(self.schema)}")


def _reachable(kind: str) -> bool:
    try:
        Db(kind, "x").rows("SELECT 1")
        return True
    except Exception:
        return False


@pytest.fixture(params=["postgres", "mysql"])
def db(request) -> Iterator[Db]:
    if not _reachable(request.param):
        pytest.skip(f"{request.param} is not reachable on 127.0.0.1")
    database = Db(request.param, f"dt_{uuid.uuid4().hex[:10]}")
    yield database
    database.drop()


ASSET = [{"name": "id", "type": "long", "primary_key": True}, {"name": "name", "type": "string"},
         {"name": "amount", "type": "decimal(10,2)"}, {"name": "seen", "type": "timestamptz"},
         {"name": "meta", "type": "json"}]


def _project(tmp_path: Path, db: Db, write_mode: str, fields: list[dict] = ASSET, **target: Any
             ) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "schema": fields})
    (project / "secrets/acme").mkdir(parents=True)
    (project / f"secrets/acme/{db.kind}.env").write_text(db.secrets())
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": db.kind, "asset": "t",
        "asset_path": "assets/csv/v1.0/t.yaml", "schema_validation_mode": "warn",
        "target": {"schema": db.schema, "write_mode": write_mode, **target},
        "source": {"files": [{"path": "data/*.csv", "object": "t"}], "incremental": {"strategy": "file_modified_time"}},
    })
    (project / "data").mkdir()
    return project, job


def _csv(project: Path, name: str, rows: list[tuple[int, str]]) -> None:
    lines = ["id,name,amount,seen,meta"] + [f'{i},{n},{i}.25,2024-05-01T10:00:0{i % 10}Z,"{{""k"": {i}}}"'
                                            for i, n in rows]
    (project / "data" / name).write_text("\n".join(lines) + "\n")


def _run(project: Path, job: Path, home: Path, **env: str) -> dict:
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env or None)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_append_lands_each_row_once_typed_with_system_columns(tmp_path, db):
    project, job = _project(tmp_path, db, "append")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bo"), (3, "Cy")])
    assert _run(project, job, home)["rows_written"] == 3
    assert _run(project, job, home)["rows_written"] == 0  # nothing new: nothing lands twice
    _csv(project, "b.csv", [(4, "Di"), (5, "Ed")])
    assert _run(project, job, home)["rows_written"] == 2
    assert db.ids() == [1, 2, 3, 4, 5]
    types = db.column_types()
    assert {"_dativo_ingest_ts", "_dativo_run_id"} <= set(types)
    if db.kind == "postgres":
        assert types["id"] == "bigint" and types["amount"] == "numeric" and types["meta"] == "jsonb"
        assert types["seen"] == "timestamp with time zone" and types["name"] == "text"
        assert db.rows(f"SELECT meta->>'k' FROM {db.table('t')} WHERE id = 2") == [("2",)]
    else:
        assert types["id"] == "bigint" and types["amount"] == "decimal" and types["seen"] == "datetime"
        assert types["name"] == "longtext"
    row = db.rows(f"SELECT name, amount, seen FROM {db.table('t')} WHERE id = 3")[0]
    assert row[0] == "Cy" and row[1] == Decimal("3.25")
    assert row[2].replace(tzinfo=None).isoformat() == "2024-05-01T10:00:03"
    versions = db.rows(f"SELECT version FROM {db.table('_dativo_state')} WHERE tenant = 'acme' AND table_name = 't'")
    assert sorted(v[0] for v in versions) == [1, 2]  # one commit per run that had something to commit


def test_required_fields_are_not_null_columns(tmp_path, db):
    fields = [{**f, "required": True} if f["name"] == "name" else f for f in ASSET]
    project, job = _project(tmp_path, db, "append", fields)
    _csv(project, "a.csv", [(1, "Ana"), (2, "")])  # an empty name is null: quarantined, never inserted
    out = _run(project, job, tmp_path / "home")
    assert (out["rows_written"], out["rows_quarantined"]) == (1, 1)
    rows = db.rows(f"SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = "
                   f"'{db.schema}' AND table_name = 't'")
    nullable = {str(r[0]): str(r[1]) for r in rows}
    assert (nullable["id"], nullable["name"], nullable["amount"]) == ("NO", "NO", "YES")


def test_a_wider_asset_type_widens_the_column_and_another_type_is_one_line(tmp_path, db):
    project, job = _project(tmp_path, db, "merge")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana")])
    _run(project, job, home)
    wider = [{**f, "type": "decimal(16,2)"} if f["name"] == "amount" else f for f in ASSET]
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "schema": wider})
    (project / "data/a.csv").write_text('id,name,amount,seen,meta\n2,Bo,12345678901234.25,2024-05-01T10:00:00Z,{}\n')
    assert _run(project, job, home)["rows_written"] == 1  # did not fit decimal(10,2): numeric field overflow
    assert db.rows(f"SELECT amount FROM {db.table('t')} WHERE id = 2") == [(Decimal("12345678901234.25"),)]
    assert db.column_types()["amount"] in ("numeric", "decimal")
    other = [{**f, "type": "double"} if f["name"] == "amount" else f for f in ASSET]
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "schema": other})
    _csv(project, "b.csv", [(3, "Cy")])
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2 and "column 'amount' is decimal128(16, 2) in the table" in out.stderr
    assert "can only widen" in out.stderr and db.ids() == [1, 2]  # nothing half-written


def test_overwrite_replaces_the_table(tmp_path, db):
    project, job = _project(tmp_path, db, "overwrite")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bo"), (3, "Cy")])
    _run(project, job, home)
    _csv(project, "a.csv", [(7, "Gu"), (8, "Ha")])
    assert _run(project, job, home)["rows_written"] == 2
    assert db.ids() == [7, 8]


def test_merge_updates_rows_in_place(tmp_path, db):
    project, job = _project(tmp_path, db, "merge")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bo"), (3, "Cy")])
    _run(project, job, home)
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bob"), (3, "Cy"), (4, "Di")])  # the file changed: re-read whole
    assert _run(project, job, home)["rows_written"] == 4
    assert db.ids() == [1, 2, 3, 4]
    assert db.rows(f"SELECT name FROM {db.table('t')} WHERE id = 2") == [("Bob",)]
    assert _run(project, job, home)["rows_written"] == 0
    assert db.ids() == [1, 2, 3, 4]


def test_quarantine_table_beside_the_table(tmp_path, db):
    project, job = _project(tmp_path, db, "append")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bo")])
    (project / "data/a.csv").write_text((project / "data/a.csv").read_text() + "x9,Bad,1.0,2024-05-01T10:00:00Z,{}\n")
    out = _run(project, job, home)
    assert out["rows_written"] == 2 and out["rows_quarantined"] == 1
    rows = db.rows(f"SELECT id, _dativo_reason FROM {db.table('t__quarantine')}")
    assert len(rows) == 1 and rows[0][0] == "x9" and "id" in rows[0][1]
    assert _run(project, job, home)["rows_quarantined"] == 0  # the file is not read again
    assert len(db.rows(f"SELECT id FROM {db.table('t__quarantine')}")) == 1


def test_state_show_and_reset(tmp_path, db):
    project, job = _project(tmp_path, db, "merge")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana"), (2, "Bo")])

    def state(*args: str) -> dict:
        out = cli("state", *args, "--config", str(job), cwd=project, home=home)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert state("show")["state"] is None
    first = _run(project, job, home)
    shown = state("show")
    assert shown["snapshot_id"] == first["snapshot_id"] == 1
    assert shown["table"].endswith(f"/{db.schema}.t")
    assert "data/a.csv" in shown["state"]["streams"]["t"]["files"]  # the cursor: the files read and when
    reset = state("reset", "--yes")
    assert reset["reset"] is True and reset["snapshot_id"] == 2
    assert state("show")["state"]["streams"] == {}
    assert _run(project, job, home)["rows_written"] == 2  # read again from the beginning
    assert db.ids() == [1, 2]


def test_names_are_quoted_never_run_as_sql(tmp_path, db):
    if db.kind == "mysql":  # MariaDB database names are folder names: no '/', no trailing '.'
        db.schema = f'x"`;..{db.schema}'
    else:
        db.schema = f'x";drop schema public;--..{db.schema}'
    project, job = _project(tmp_path, db, "append")
    _csv(project, "a.csv", [(1, "Ana")])
    _run(project, job, tmp_path / "home")
    assert db.ids() == [1]


POINTS = ["mid-read", "mid-stage", "before-commit", "after-commit"]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_point_loses_and_duplicates_nothing(tmp_path, db, point):
    # no json column: PostgreSQL's rows then go straight into the table (binary COPY in the commit's transaction)
    project, job = _project(tmp_path, db, "append", ASSET[:4], chunk_rows=500)
    home = tmp_path / "home"
    _csv(project, "a.csv", [(i, f"r{i}") for i in range(0, 1000)])
    _run(project, job, home)
    _csv(project, "b.csv", [(i, f"r{i}") for i in range(1000, 2200)])
    killed = cli("run", "--config", str(job), cwd=project, home=home, env={"DATIVO_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert db.ids() == list(range(1000 if point != "after-commit" else 2200))
    _run(project, job, home)
    assert db.ids() == list(range(2200))  # 0 lost, 0 duplicated
    _run(project, job, home)
    assert db.ids() == list(range(2200))


def test_a_full_replace_decided_after_rows_went_in_keeps_this_runs_rows(db):
    """A Singer ACTIVATE_VERSION turns an append into a full replace after rows may have been loaded straight
    into the table: the commit removes every row but this run's."""
    import pyarrow as pa

    from dativo_ingest.sinks.database.mysql import Mysql
    from dativo_ingest.sinks.database.postgres import Postgres
    from dativo_ingest.sinks.database.sink import DatabaseSink

    dialect = Postgres({"host": "127.0.0.1", "database": "test", "user": "postgres"}) if db.kind == "postgres" \
        else Mysql({"host": "127.0.0.1", "user": "root"})
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("_dativo_run_id", pa.string())])

    def rows(ids: range, run: str) -> pa.Table:
        return pa.table({"id": pa.array(list(ids), pa.int64()), "_dativo_run_id": [run] * len(ids)}, schema=schema)

    first = DatabaseSink(dialect, db.schema, "t", schema, tenant="acme")
    first.current_state()
    first.write(rows(range(0, 5), "run-1"))
    first.commit(None)
    second = DatabaseSink(dialect, db.schema, "t", schema, tenant="acme")
    second.current_state()
    second.write(rows(range(10, 13), "run-2"))
    assert second.replace_at_first_commit()
    second.write(rows(range(13, 15), "run-2"))
    assert db.ids() == [0, 1, 2, 3, 4]  # nothing visible before the commit
    assert second.commit(None).rows == 5
    assert db.ids() == [10, 11, 12, 13, 14]


def test_a_run_overtaken_by_another_commits_nothing_and_a_merge_is_reapplied(db):
    import pyarrow as pa

    from dativo_ingest.sinks.base import ConcurrentCommitError
    from dativo_ingest.sinks.database.mysql import Mysql
    from dativo_ingest.sinks.database.postgres import Postgres
    from dativo_ingest.sinks.database.sink import DatabaseSink
    from dativo_ingest.state.envelope import StateEnvelope

    dialect = Postgres({"host": "127.0.0.1", "database": "test", "user": "postgres"}) if db.kind == "postgres" \
        else Mysql({"host": "127.0.0.1", "user": "root"})
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])

    def sink(mode: str) -> DatabaseSink:
        s = DatabaseSink(dialect, db.schema, f"t_{mode}", schema, tenant="acme", primary_key=["id"], write_mode=mode)
        s.current_state()
        return s

    for mode in ("append", "merge"):
        a, b = sink(mode), sink(mode)
        a.write(pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=schema))
        b.write(pa.table({"id": [2, 3], "name": ["B", "C"]}, schema=schema))
        a.commit(StateEnvelope(engine="native"))
        if mode == "append":
            with pytest.raises(ConcurrentCommitError):
                b.commit(StateEnvelope(engine="native"))
            assert db.rows(f"SELECT id, name FROM {db.table('t_append')} ORDER BY id") == [(1, "a"), (2, "b")]
        else:  # a merge whose state covers the other's is re-applied on top of it
            b.commit(StateEnvelope(engine="native"))
            assert db.rows(f"SELECT id, name FROM {db.table('t_merge')} ORDER BY id") == [
                (1, "a"), (2, "B"), (3, "C")]


def test_merge_deletes_the_keys_gone_from_the_source(db):
    import pyarrow as pa

    from dativo_ingest.sinks.database.mysql import Mysql
    from dativo_ingest.sinks.database.postgres import Postgres
    from dativo_ingest.sinks.database.sink import DatabaseSink

    dialect = Postgres({"host": "127.0.0.1", "database": "test", "user": "postgres"}) if db.kind == "postgres" \
        else Mysql({"host": "127.0.0.1", "user": "root"})
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
    first = DatabaseSink(dialect, db.schema, "t", schema, tenant="acme", primary_key=["id"], write_mode="merge")
    first.current_state()
    first.write(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}, schema=schema))
    first.commit(None)
    second = DatabaseSink(dialect, db.schema, "t", schema, tenant="acme", primary_key=["id"], write_mode="merge")
    second.current_state()
    key_schema, batches = second.current_keys()
    assert sorted(i for b in batches for i in b.column(0).to_pylist()) == [1, 2, 3]
    second.write(pa.table({"id": [3], "name": ["C"]}, schema=schema))
    second.delete_keys(pa.table({"id": pa.array([1], pa.int64())}))
    result = second.commit(None)
    assert result.rows == 1 and second.pending_deletes == 0
    assert db.rows(f"SELECT id, name FROM {db.table('t')} ORDER BY id") == [(2, "b"), (3, "C")]


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_a_kill_leaves_the_quarantine_complete_and_single_after_the_next_run(tmp_path, db, point):
    project, job = _project(tmp_path, db, "append", ASSET[:4])
    home = tmp_path / "home"
    _csv(project, "a.csv", [(i, f"r{i}") for i in range(20)])
    text = (project / "data/a.csv").read_text()
    (project / "data/a.csv").write_text(text + "".join(f"x{i},bad,1.0,2024-05-01T10:00:00Z\n" for i in range(5)))
    db.rows(f"CREATE {'SCHEMA' if db.kind == 'postgres' else 'DATABASE'} {db.q(db.schema)}")
    stale = "_dativo_pending_1000000000_0123abcd"  # left by a run killed long ago: dropped by the next one
    db.rows(f"CREATE TABLE {db.table(stale)} (id BIGINT)")

    def counts() -> tuple[int, int]:
        tables = {r[0] for r in db.rows(f"SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                        f"'{db.schema}'")}
        return tuple(db.rows(f"SELECT count(*) FROM {db.table(t)}")[0][0] if t in tables else 0
                     for t in ("t", "t__quarantine"))

    killed = cli("run", "--config", str(job), cwd=project, home=home, env={"DATIVO_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert counts() == ((20, 0) if point == "after-commit" else (0, 0))
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == (0 if point == "after-commit" else 1), again.stderr[-2000:]
    assert counts() == (20, 5)
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    assert counts() == (20, 5)
    pending = [r[0] for r in db.rows(f"SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                     f"'{db.schema}' AND table_name LIKE '%pending%'")]
    assert stale not in pending
    # a run killed before its data commit leaves its (young) pending table; one that completed leaves none
    assert len(pending) == (1 if point == "before-commit" else 0)


def test_check_refuses_an_unreachable_target_in_one_line(tmp_path, db):
    project, job = _project(tmp_path, db, "append")
    variable = "POSTGRES_PORT" if db.kind == "postgres" else "MYSQL_PORT"
    (project / f"secrets/acme/{db.kind}.env").write_text(db.secrets().replace(variable + "=", "OLD_PORT=") +
                                                         f"{variable}=1\n")
    out = cli("check", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "connection refused" in lines[0], out.stderr
    assert variable in lines[0] and "target.connection" in lines[0] and "internal error" not in lines[0]


@pytest.mark.parametrize("mode", ["append", "merge"])  # straight into the table / through a staging table
def test_every_stage_type_round_trips(db, mode):
    import datetime as dt

    import pyarrow as pa

    from dativo_ingest.sinks.database.mysql import Mysql
    from dativo_ingest.sinks.database.postgres import Postgres
    from dativo_ingest.sinks.database.sink import DatabaseSink
    from dativo_ingest.stage.types import parse_type
    from tests.integration.test_object_storage_formats import TYPES, sample_values

    utc = dt.timezone.utc
    types = [t for t in TYPES if t != "json"]
    values = {t: sample_values(t) for t in types}
    if db.kind == "mysql":  # MySQL has no infinities, and float32 in FLOAT keeps ~7 digits
        values["float"] = [0.5, -0.0, 1.25, None, 3.0, 1e10, 2.5, 1.5, 2.5, 3.5]
        values["double"] = [v if v not in (float("inf"), float("-inf")) else 1.0 for v in values["double"]]
        values["date"][1] = dt.date(1000, 1, 1)  # DATE starts at 1000-01-01
        values["timestamp"][1] = dt.datetime(1970, 1, 1, 0, 0, 0, 1)
    values["integer"][0] = -1  # every row needs a distinct key
    values["long"] = list(range(10))
    schema = pa.schema([pa.field(f"c_{t}", parse_type(t).arrow) for t in types])
    table = pa.table({f"c_{t}": pa.array(values[t], parse_type(t).arrow) for t in types}, schema=schema)
    dialect = Postgres({"host": "127.0.0.1", "database": "test", "user": "postgres"}) if db.kind == "postgres" \
        else Mysql({"host": "127.0.0.1", "user": "root"})
    sink = DatabaseSink(dialect, db.schema, "types", schema, tenant="acme", write_mode=mode,
                        primary_key=["c_long"] if mode == "merge" else [])
    sink.current_state()
    sink.write(table)
    sink.commit(None)
    names = ", ".join(db.q(n) for n in schema.names)
    rows = db.rows(f"SELECT {names} FROM {db.table('types')} ORDER BY {db.q('c_long')}")
    for i, name in enumerate(schema.names):
        got = [r[i] for r in rows]
        want = table.column(name).to_pylist()
        if name == "c_timestamptz" and db.kind == "mysql":  # DATETIME(6) in UTC, without the zone
            want = [v.astimezone(utc).replace(tzinfo=None) if v is not None else None for v in want]
        if name == "c_time" and db.kind == "mysql":  # TIME comes back as a timedelta
            got = [(dt.datetime.min + v).time() if v is not None else None for v in got]
        if name == "c_boolean" and db.kind == "mysql":
            got = [bool(v) if v is not None else None for v in got]
        if name in ("c_binary",):
            got = [bytes(v) if v is not None else None for v in got]
        if name == "c_float":  # float32 → real / FLOAT: compare as float32
            got = pa.array(got, pa.float32()).to_pylist()
        assert got == want, name


def test_postgres_source_to_database_target_cursor_and_hard_deletes(tmp_path, db):
    """A native PostgreSQL source, incremental on updated_at with detect_deletes, into each database: the target
    equals the source after every run, and ``state show`` shows the cursor committed with the rows."""
    source = f"src_{uuid.uuid4().hex[:8]}"
    pg = Db("postgres", source)
    pg.rows(f"CREATE SCHEMA {source}")
    try:
        pg.rows(f"CREATE TABLE {source}.o (id int PRIMARY KEY, v text, updated_at timestamptz)")
        pg.rows(f"INSERT INTO {source}.o SELECT g, 'v' || g, '2024-01-01Z'::timestamptz + g * interval '1 minute' "
                f"FROM generate_series(1, 50) g")
        project = make_project(tmp_path / "project")
        write_yaml(project / "assets/o.yaml", {
            "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0",
            "schema": [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
                       {"name": "updated_at", "type": "timestamptz"}]})
        (project / "secrets/acme").mkdir(parents=True)
        (project / "secrets/acme/postgres.env").write_text(pg.secrets())  # the source's, and a postgres target's
        (project / f"secrets/acme/{db.kind}.env").write_text(db.secrets())
        job = write_yaml(project / "jobs/acme/t.yaml", {
            "tenant_id": "acme", "source_connector": "postgres", "engine": "native", "target_connector": db.kind,
            "asset": "t", "asset_path": "assets/o.yaml", "target": {"schema": db.schema, "write_mode": "merge"},
            "source": {"tables": [{"name": f"{source}.o", "object": "o"}],
                       "incremental": {"strategy": "updated_at", "cursor_field": "updated_at",
                                       "detect_deletes": True}}})
        home = tmp_path / "home"

        def same() -> bool:
            return sorted(db.rows(f"SELECT id, v FROM {db.table('t')}")) == sorted(
                pg.rows(f"SELECT id, v FROM {source}.o"))

        assert _run(project, job, home)["rows_read"] == 50 and same()
        pg.rows(f"INSERT INTO {source}.o VALUES (51, 'new', '2024-02-01Z')")
        pg.rows(f"UPDATE {source}.o SET v = 'changed', updated_at = '2024-02-02Z' WHERE id = 7")
        pg.rows(f"DELETE FROM {source}.o WHERE id IN (3, 40)")
        second = _run(project, job, home)
        assert (second["rows_read"], second["rows_written"], second["rows_deleted"]) == (2, 2, 2) and same()
        out = cli("state", "show", "--config", str(job), cwd=project, home=home)
        assert out.returncode == 0, out.stderr
        cursor = json.loads(out.stdout)["state"]["streams"]["o"]["cursor"]
        assert cursor["field"] == "updated_at" and cursor["value"].startswith("2024-02-02")
        assert _run(project, job, home)["rows_read"] == 0 and same()
    finally:
        pg.drop()


def test_merge_into_a_table_without_its_key_is_one_line(tmp_path, db):
    project, job = _project(tmp_path, db, "append")
    home = tmp_path / "home"
    _csv(project, "a.csv", [(1, "Ana")])
    _run(project, job, home)
    job.write_text(job.read_text().replace("write_mode: append", "write_mode: merge"))
    _csv(project, "a.csv", [(1, "Ann")])
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert "target.write_mode" in last and "has no primary key on (id)" in last and "ADD PRIMARY KEY" in last, last
    assert "internal error" not in out.stderr
    db.rows(f"ALTER TABLE {db.table('t')} ADD PRIMARY KEY ({db.q('id')})")  # the fix the line names
    assert _run(project, job, home)["rows_written"] == 1
    assert db.rows(f"SELECT id, name FROM {db.table('t')}") == [(1, "Ann")]
