"""``check`` refuses everything ``run`` would refuse (issue 15, item 6): each example that passed ``check`` and then
failed at ``run`` is now one line on stderr naming the file, the field and the fix, exit 2, before any
connector is installed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.acceptance.helpers import REPO, cli, make_project, write_yaml
from tests.pg import needs_postgres


def _mariadb_reachable() -> bool:
    import pymysql

    try:
        pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3).close()
        return True
    except Exception:
        return False


needs_mariadb = pytest.mark.skipif(not _mariadb_reachable(), reason="MariaDB is not reachable on 127.0.0.1:3306")


@pytest.fixture
def demo_customers() -> None:
    """The demo table of ``data/sql/mariadb.sql`` in database ``test`` (the file is idempotent)."""
    import pymysql

    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)
    try:
        with con.cursor() as cur:
            text = "\n".join(line for line in (REPO / "data/sql/mariadb.sql").read_text().splitlines()
                             if not line.startswith("--"))
            for statement in filter(str.strip, text.split(";")):
                cur.execute(statement)
    finally:
        con.close()

PG = {"host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres", "password": ""}
MY = {"host": "127.0.0.1", "port": 3306, "database": "test", "user": "root", "password": ""}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "project")
    shutil.copytree(REPO / "assets", root / "assets")
    (root / "data").mkdir()
    (root / "data" / "e.csv").write_text("id\n1\n")
    write_yaml(root / "assets/csv/v1.0/e.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "e", "version": "1.0", "object": "e",
        "schema": [{"name": "id", "type": "long", "required": True}]})
    return root


def _job(project: Path, **fields: Any) -> Path:
    job = {"tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "e",
           "asset_path": "assets/csv/v1.0/e.yaml", "source": {"files": [{"path": "data/e.csv"}]}, **fields}
    return write_yaml(project / "jobs" / "acme" / "job.yaml", job)


def _check(project: Path, job: Path, tmp_path: Path) -> tuple[int, str, str]:
    """(exit code, the one stderr line, stdout); the connectors folder is the test's own, empty one."""
    out = cli("check", "--config", str(job), "--log-format", "text", cwd=project, home=tmp_path / "home",
              env={"DATIVO_CONNECTORS_DIR": str(tmp_path / "connectors")})
    lines = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert len(lines) <= 1, out.stderr
    return out.returncode, (lines[0] if lines else ""), out.stdout


def _nothing_installed(tmp_path: Path) -> bool:
    folder = tmp_path / "connectors"
    return not folder.exists() or not any(folder.iterdir())


def test_flink_is_not_an_engine_and_the_line_names_those_that_are(project, tmp_path):
    code, line, _ = _check(project, _job(project, engine="flink"), tmp_path)
    assert code == 2
    assert line == (f"ERROR: {project / 'jobs/acme/job.yaml'}: engine: engine 'flink' is not available (engines: "
                    "native, airbyte, singer (also called meltano), spark) (use one of them; 'csv' supports native, "
                    "airbyte, singer, spark)")


def test_a_connector_that_cannot_be_read_is_not_a_source(project, tmp_path):
    code, line, _ = _check(project, _job(project, source_connector="local"), tmp_path)
    assert code == 2
    assert line == (f"ERROR: {project / 'jobs/acme/job.yaml'}: source_connector: connector 'local' cannot be "
                    "a source (registry roles: target) (choose a connector with role source)")


def test_a_connector_that_cannot_be_written_is_not_a_target(project, tmp_path):
    code, line, _ = _check(project, _job(project, target_connector="google_sheets"), tmp_path)
    assert code == 2
    assert line.endswith("target_connector: connector 'google_sheets' cannot be a target (registry roles: source) "
                         "(choose a connector with role target)")


def test_an_object_the_registry_does_not_list(project, tmp_path):
    job = _job(project, source_connector="faker", asset="faker_users", asset_path="assets/faker/v1.0/users.yaml",
               source={"objects": ["users", "orders"]})
    code, line, _ = _check(project, job, tmp_path)
    assert code == 2
    assert line == (f"ERROR: {job}: source.objects[1]: 'faker' has no object 'orders' (objects_supported: users, "
                    "products, purchases) (use one of them)")
    assert _nothing_installed(tmp_path)


def test_a_registry_that_claims_an_engine_that_does_not_exist_is_refused_when_it_loads(project, tmp_path):
    path = project / "registry" / "connectors.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["connectors"]["iceberg"]["engines_supported"] = ["native", "flink"]
    write_yaml(path, registry)
    code, line, _ = _check(project, _job(project), tmp_path)
    assert code == 2
    assert line == (f"ERROR: {path}: connectors.iceberg.engines_supported: engine 'flink' is not implemented "
                    "(engines: native, airbyte, singer (also called meltano), spark) (remove 'flink')")


def test_a_registry_that_claims_a_role_nothing_implements_is_refused(project, tmp_path):
    path = project / "registry" / "connectors.yaml"
    registry = yaml.safe_load(path.read_text())
    registry["connectors"]["local"]["roles"] = ["source", "target"]
    write_yaml(path, registry)
    code, line, _ = _check(project, _job(project), tmp_path)
    assert code == 2
    assert line == (f"ERROR: {path}: connectors.local.roles: 'local' cannot be read as a source by any engine yet "
                    "(remove 'source' from its roles)")


@needs_postgres
@pytest.mark.parametrize("engine", ["native", "meltano"])
def test_a_table_that_does_not_exist(project, tmp_path, engine):
    job = _job(project, source_connector="postgres", engine=engine, asset="pg_orders",
               asset_path="assets/postgres/v1.0/orders.yaml",
               source={"connection": PG, "tables": [{"name": "public.orders_nowhere", "object": "orders"}]})
    code, line, _ = _check(project, job, tmp_path)
    assert code == 2
    assert line.startswith(f"ERROR: {job}: source.tables[0].name: table 'public.orders_nowhere' cannot be read in "
                           "PostgreSQL: ")
    assert line.endswith("(check the name (schema.table); `dativo_ingest discover --connector postgres --tenant-id "
                         "acme` lists the tables)")
    assert _nothing_installed(tmp_path)  # the Singer tap was neither installed nor started


@needs_postgres
def test_a_refused_connection_with_the_singer_engine_is_one_line_before_the_tap_is_installed(project, tmp_path):
    job = _job(project, source_connector="postgres", engine="meltano", asset="pg_orders",
               asset_path="assets/postgres/v1.0/orders.yaml",
               source={"connection": {**PG, "port": 1}, "tables": [{"name": "public.orders", "object": "orders"}]})
    for command in ("check", "run"):
        out = cli(command, "--config", str(job), "--log-format", "text", cwd=project, home=tmp_path / "home",
                  env={"DATIVO_CONNECTORS_DIR": str(tmp_path / "connectors")})
        assert out.returncode == 2
        (line,) = [x for x in out.stderr.splitlines() if x.startswith("ERROR")]
        assert line == (f"ERROR: {job}: source.connection: cannot connect to PostgreSQL at 127.0.0.1:1 as user "
                        "'postgres', database 'test': connection refused or unreachable (is the server running? "
                        "check POSTGRES_HOST / POSTGRES_PORT or source.connection.host/port)")
        assert _nothing_installed(tmp_path)


@needs_mariadb
def test_a_query_that_fails(project, tmp_path, demo_customers):
    job = _job(project, source_connector="mysql", engine="native", asset="mysql_customers",
               asset_path="assets/mysql/v1.0/customers.yaml",
               source={"connection": MY, "query": "SELECT customer_id, nme FROM dativo_customers"})
    code, line, _ = _check(project, job, tmp_path)
    assert code == 2
    assert line.startswith(f"ERROR: {job}: source.query: the query fails in MySQL: ")
    assert line.endswith("Unknown column 'nme' in 'SELECT' (run it by hand and fix it)") or \
        line.endswith("Unknown column 'nme' in 'field list' (run it by hand and fix it)")


@needs_mariadb
def test_mysql_with_its_default_engine_passes_and_says_what_the_first_run_installs(project, tmp_path,
                                                                                  demo_customers):
    job = _job(project, source_connector="mysql", asset="mysql_customers",
               asset_path="assets/mysql/v1.0/customers.yaml",
               source={"connection": MY, "tables": [{"name": "dativo_customers", "object": "customers"}]})
    code, line, stdout = _check(project, job, tmp_path)
    assert (code, line) == (0, "")
    pip_url = yaml.safe_load((REPO / "dativo_ingest/engines/singer/singer.yaml").read_text())["taps"]["mysql"][
        "pip_url"]
    assert stdout.strip() == (f"ok: {job} → acme.mysql_customers [engine singer, merge, strict; installs {pip_url} "
                              "on first run]")
    assert _nothing_installed(tmp_path)


def test_an_installed_connector_checks_the_config_against_its_spec(project, tmp_path):
    """airbyte-source-faker installed (the tests' connector cache): a config its spec refuses is one line; not
    installed, check passes and says the first run installs it."""
    from dativo_ingest.engines.launchers.venv import VenvLauncher
    from tests.integration.test_singer_postgres import connectors_cache

    entry = yaml.safe_load((REPO / "dativo_ingest/engines/airbyte/airbyte.yaml").read_text())["connectors"]["faker"]
    pip_url = f"{entry['package']}=={entry['version']}"
    if not VenvLauncher(pip_url, entry["executable"], root=connectors_cache()).is_installed():
        pytest.skip(f"{pip_url} is not in {connectors_cache()} (tests/integration/test_airbyte_faker.py installs it)")
    job = _job(project, source_connector="faker", asset="faker_users", asset_path="assets/faker/v1.0/users.yaml",
               source={"objects": ["users"], "connection": {"count": "lots"}})
    out = cli("check", "--config", str(job), cwd=project, home=tmp_path / "home",
              env={"DATIVO_CONNECTORS_DIR": str(connectors_cache())})
    assert out.returncode == 2
    assert out.stderr.strip() == (f"ERROR: {job}: source.connection: the config of Airbyte connector 'faker' does not "
                                  "match its spec: 'count' must be integer (got string) (set the keys in the recipe's "
                                  "connection_template or the job's source.connection (mapped by engines/airbyte.yaml),"
                                  " or raw under engine.options.airbyte.config)")
    code, line, stdout = _check(project, job, tmp_path)  # its own, empty connectors folder: nothing to check against
    assert (code, line) == (0, "") and stdout.strip().endswith(f"; installs {pip_url} on first run]")
