"""meltanolabs-tap-postgres (engine meltano) against the machine's PostgreSQL, schema ``dativo_singer``.

Tap venvs are cached per machine (``~/.cache/dativo-ingest-tests/connectors``): the first run on a machine
installs them (about a minute), later runs reuse them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml
from tests.pg import URI, needs_postgres, psycopg  # noqa: F401

SCHEMA = "dativo_singer"
JOB = REPO / "jobs/acme/postgres_orders_singer.yaml"




pytestmark = needs_postgres


def connectors_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dativo-ingest-tests" / "connectors"


@pytest.fixture(scope="module")
def tap_env() -> dict[str, str]:
    """Install the job's tap once per machine (timed: the cold install is reported in the test log)."""
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    plugins = yaml.safe_load((REPO / "dativo_ingest/engines/singer/singer.yaml").read_text())["taps"]
    tap = plugins["postgres"]
    launcher = VenvLauncher(tap["pip_url"], tap["executable"], root=connectors_cache())
    started = time.monotonic()
    launcher.ensure_ready()
    print(f"\n{tap['pip_url']}: ready in {time.monotonic() - started:.1f}s (cache {connectors_cache()})")
    return {"DATIVO_CONNECTORS_DIR": str(connectors_cache())}


def sql(*statements: str) -> list:
    with psycopg.connect(URI, autocommit=True) as con:
        rows: list = []
        for statement in statements:
            cur = con.execute(statement)
            rows = cur.fetchall() if cur.description else rows
        return rows


@pytest.fixture
def table():
    """A fresh table in the dativo_singer schema (the schema is kept: the cached catalog names it)."""
    name = f"orders_{uuid.uuid4().hex[:8]}"
    sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"CREATE TABLE {SCHEMA}.{name} (id int PRIMARY KEY, customer text, amount numeric(12,2), status text, "
        f"details jsonb, updated_at timestamptz NOT NULL)",
        f"""INSERT INTO {SCHEMA}.{name} VALUES
            (1, 'ann', 10.50, 'new', '{{"a": 1}}', '2024-01-01T00:00:00Z'),
            (2, 'bob', 20, 'new', NULL, '2024-01-02T00:00:00Z'),
            (3, 'cy', NULL, 'paid', '[1, 2]', '2024-01-03T00:00:00Z')""")
    yield name
    sql(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")


def _project(tmp_path: Path, table: str, *, engine: str = "meltano") -> tuple[Path, Path]:
    """The repository's tap-postgres job, pointed at ``table`` (and at ``engine``)."""
    project = make_project(tmp_path / "project")
    shutil.copytree(REPO / "assets", project / "assets")
    job = yaml.safe_load(JOB.read_text())
    job["source"]["tables"] = [{"name": f"{SCHEMA}.{table}", "object": "orders"}]
    job["engine"] = engine
    return project, write_yaml(project / "jobs/acme/postgres_orders_singer.yaml", job)


def _run(project: Path, job: Path, home: Path, env: dict[str, str]) -> dict:
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _landed(home: Path) -> list[tuple]:
    return sorted((r["id"], r["customer"], r["status"], r["updated_at"]) for r in
                  table_rows(home, "acme.pg_orders").to_pylist())


def _source(table: str) -> list[tuple]:
    return sorted(sql(f"SELECT id, customer, status, updated_at FROM {SCHEMA}.{table}"))


def test_incremental_on_updated_at_lands_only_the_changes(tmp_path, table, tap_env):
    project, job = _project(tmp_path, table)
    home = tmp_path / "home"
    first = _run(project, job, home, tap_env)
    assert first["rows_written"] == 3
    data = table_rows(home, "acme.pg_orders")
    rows = {r["id"]: r for r in data.to_pylist()}
    assert str(rows[1]["amount"]) == "10.50" and json.loads(rows[1]["details"]) == {"a": 1}
    assert json.loads(rows[3]["details"]) == [1, 2] and rows[3]["amount"] is None
    assert str(data.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"

    sql(f"UPDATE {SCHEMA}.{table} SET status = 'paid', updated_at = '2024-02-01T00:00:00Z' WHERE id = 1",
        f"INSERT INTO {SCHEMA}.{table} VALUES (4, 'dee', 1, 'new', NULL, '2024-02-02T00:00:00Z')")
    second = _run(project, job, home, tap_env)
    assert second["rows_written"] == 2  # the update and the insert; the tap's >= resend of row 3 is skipped
    assert second["rows_read"] <= 3
    assert _landed(home) == _source(table)

    third = _run(project, job, home, tap_env)
    assert third["rows_written"] == 0 and third["commits"] == 0  # nothing changed: no new snapshot


def test_switching_meltano_native_meltano_keeps_its_place(tmp_path, table, tap_env):
    home = tmp_path / "home"
    project, job = _project(tmp_path, table, engine="meltano")
    assert _run(project, job, home, tap_env)["rows_written"] == 3

    sql(f"UPDATE {SCHEMA}.{table} SET status = 'shipped', updated_at = '2024-03-01T00:00:00Z' WHERE id = 2",
        f"INSERT INTO {SCHEMA}.{table} VALUES (5, 'eve', 5, 'new', NULL, '2024-03-02T00:00:00Z')")
    project, job = _project(tmp_path / "native", table, engine="native")
    native = _run(project, job, home, tap_env)
    assert native["rows_read"] == 2 and native["rows_written"] == 2  # no full re-sync
    assert _landed(home) == _source(table)

    sql(f"UPDATE {SCHEMA}.{table} SET status = 'gone', updated_at = '2024-04-01T00:00:00Z' WHERE id = 3",
        f"INSERT INTO {SCHEMA}.{table} VALUES (6, 'fay', 6, 'new', NULL, '2024-04-02T00:00:00Z')")
    project, job = _project(tmp_path / "back", table, engine="meltano")
    back = _run(project, job, home, tap_env)
    assert back["rows_written"] == 2  # only rows 3 and 6: the tap started from the native cursor
    assert back["rows_read"] <= 3
    landed = _landed(home)
    assert landed == _source(table)  # no gap
    assert len({r[0] for r in landed}) == len(landed) == 5  # no duplicates
