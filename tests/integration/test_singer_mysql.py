"""pipelinewise-tap-mysql (engine meltano, the registry's default for ``mysql``) against the machine's MariaDB,
database ``dativo_singer_my``: incremental by a replication key, and the engine switch meltano → native → meltano
keeping its place (the tap's bookmark and the native cursor are one position in the state envelope).

The tap's venv is cached per machine (``~/.cache/dativo-ingest-tests/connectors``, see test_singer_postgres).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml
from tests.integration.test_singer_postgres import connectors_cache

pymysql = pytest.importorskip("pymysql")
DATABASE = "dativo_singer_my"


def _connect(database: str | None = DATABASE):
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", database=database, autocommit=True,
                           connect_timeout=3)


def _reachable() -> bool:
    try:
        _connect(None).close()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _reachable(), reason="MariaDB is not reachable on 127.0.0.1:3306")


def sql(*statements: str) -> list[tuple]:
    con = _connect()
    try:
        with con.cursor() as cur:
            rows: list[tuple] = []
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall())
            return rows
    finally:
        con.close()


@pytest.fixture(scope="module")
def tap_env() -> dict[str, str]:
    """Install the registry default's tap once per machine (the cold install time is printed)."""
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    tap = yaml.safe_load((REPO / "dativo_ingest/engines/singer/singer.yaml").read_text())["taps"]["mysql"]
    started = time.monotonic()
    VenvLauncher(tap["pip_url"], tap["executable"], root=connectors_cache()).ensure_ready()
    print(f"\n{tap['pip_url']}: ready in {time.monotonic() - started:.1f}s (cache {connectors_cache()})")
    return {"DATIVO_CONNECTORS_DIR": str(connectors_cache())}


@pytest.fixture
def table():
    con = _connect(None)
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    con.close()
    name = f"orders_{uuid.uuid4().hex[:8]}"
    sql(f"CREATE TABLE {name} (id int PRIMARY KEY, customer varchar(20), amount decimal(12,2), "
        f"status varchar(20), updated_at datetime(6) NOT NULL)",
        f"""INSERT INTO {name} VALUES (1, 'ann', 10.50, 'new', '2024-01-01 00:00:00'),
            (2, 'bob', 20, 'new', '2024-01-02 00:00:00'), (3, 'cy', NULL, 'paid', '2024-01-03 00:00:00')""")
    yield name
    sql(f"DROP TABLE IF EXISTS {name}")


def _project(tmp_path: Path, table: str, *, engine: str | None = None) -> tuple[Path, Path]:
    """A project whose job reads ``table`` with the recipe's engine (meltano) or ``engine``."""
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/mysql/v1.0/orders.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "my_orders", "version": "1.0", "object": "orders",
        "schema": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                   {"name": "customer", "type": "string"}, {"name": "amount", "type": "decimal(12,2)"},
                   {"name": "status", "type": "string"}, {"name": "updated_at", "type": "timestamp",
                                                          "required": True}]})
    job = {"tenant_id": "acme", "source_connector": "mysql", "target_connector": "iceberg",
           "asset": "my_orders", "asset_path": "assets/mysql/v1.0/orders.yaml",
           "source": {"connection": {"host": "127.0.0.1", "port": 3306, "database": DATABASE, "user": "root",
                                     "password": ""},
                      "tables": [{"name": table, "object": "orders"}],
                      "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}}
    if engine is not None:
        job["engine"] = engine
    return project, write_yaml(project / "jobs/acme/my_orders.yaml", job)


def _run(project: Path, job: Path, home: Path, env: dict[str, str]) -> dict:
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _landed(home: Path) -> list[tuple]:
    return sorted((r["id"], r["customer"], r["status"], r["updated_at"]) for r in
                  table_rows(home, "acme.my_orders").to_pylist())


def _source(table: str) -> list[tuple]:
    return sorted(sql(f"SELECT id, customer, status, updated_at FROM {table}"))


def test_the_registry_default_reads_mariadb_incrementally(tmp_path, table, tap_env):
    project, job = _project(tmp_path, table)
    home = tmp_path / "home"
    first = _run(project, job, home, tap_env)
    assert first["rows_written"] == 3
    rows = {r["id"]: r for r in table_rows(home, "acme.my_orders").to_pylist()}
    assert str(rows[1]["amount"]) == "10.50" and rows[3]["amount"] is None
    assert _landed(home) == _source(table)
    state = json.loads(cli("state", "show", "--config", str(job), cwd=project, home=home).stdout)["state"]
    stream = state["streams"]["orders"]
    assert state["engine"] == "singer" and stream["singer"]["tap_stream_id"] == f"{DATABASE}-{table}"
    assert stream["singer"]["bookmark"]["replication_key"] == "updated_at"

    sql(f"UPDATE {table} SET status = 'paid', updated_at = '2024-02-01 00:00:00' WHERE id = 1",
        f"INSERT INTO {table} VALUES (4, 'dee', 1, 'new', '2024-02-02 00:00:00')")
    second = _run(project, job, home, tap_env)
    assert second["rows_written"] == 2  # the update and the insert; the tap's >= resend of the last row is skipped
    assert second["rows_read"] <= 3
    assert _landed(home) == _source(table)
    third = _run(project, job, home, tap_env)
    assert third["rows_written"] == 0 and third["commits"] == 0


def test_switching_meltano_native_meltano_keeps_its_place(tmp_path, table, tap_env):
    home = tmp_path / "home"
    project, job = _project(tmp_path, table, engine="meltano")
    assert _run(project, job, home, tap_env)["rows_written"] == 3

    sql(f"UPDATE {table} SET status = 'shipped', updated_at = '2024-03-01 00:00:00' WHERE id = 2",
        f"INSERT INTO {table} VALUES (5, 'eve', 5, 'new', '2024-03-02 00:00:00')")
    project, job = _project(tmp_path / "native", table, engine="native")
    native = _run(project, job, home, tap_env)
    assert native["rows_written"] == 2 and native["rows_read"] <= 3  # no full re-sync
    assert _landed(home) == _source(table)

    sql(f"UPDATE {table} SET status = 'gone', updated_at = '2024-04-01 00:00:00' WHERE id = 3",
        f"INSERT INTO {table} VALUES (6, 'fay', 6, 'new', '2024-04-02 00:00:00')")
    project, job = _project(tmp_path / "back", table, engine="meltano")
    back = _run(project, job, home, tap_env)
    assert back["rows_written"] == 2  # only rows 3 and 6: the tap started from the native cursor
    assert back["rows_read"] <= 3
    landed = _landed(home)
    assert landed == _source(table)  # no gap
    assert len({r[0] for r in landed}) == len(landed) == 5  # no duplicates
