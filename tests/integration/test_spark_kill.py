# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""A Spark run whose driver is SIGKILLed while the tasks write data files: no snapshot, no state change, only
unreferenced files; the next run lands every row exactly once. Then the job runs on the native engine and
continues from the cursor Spark committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

from tests.acceptance.helpers import catalog, table_rows
from tests.integration.spark_helpers import run_here, spark_project, spark_session_per_module  # noqa: F401
from tests.integration.test_postgres_source import pytestmark, schema, sql  # noqa: F401

FIELDS = [{"name": "id", "type": "long"}, {"name": "v", "type": "string"}, {"name": "created", "type": "timestamp"}]


def _source(schema_name: str) -> dict:
    return {"connection": {"host": "127.0.0.1", "port": "5432", "database": "test", "user": "postgres",
                           "password": ""},
            "tables": [{"name": f"{schema_name}.ev", "object": "ev"}],
            "incremental": {"strategy": "created", "cursor_field": "created"}}


def _insert(schema_name: str, first: int, last: int) -> None:
    sql(f"INSERT INTO {schema_name}.ev SELECT i, 'v' || i, '2024-01-01'::timestamp + i * interval '1 second' "
        f"FROM generate_series({first}, {last}) i")


def _run_killed(job, home) -> int:
    """``dativo_ingest run`` in a process of its own whose Spark task kills it after writing a data file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update({"DATIVO_HOME": str(home), "DATIVO_FAULT": "spark-task"})
    proc = subprocess.Popen([sys.executable, "-m", "dativo_ingest", "run", "--config", str(job)],
                            cwd=job.parents[2], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        proc.communicate(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the JVM and workers it started, should any outlive it
        except ProcessLookupError:
            pass
    return proc.returncode


def test_a_driver_killed_mid_write_loses_and_duplicates_nothing(tmp_path, schema, monkeypatch):
    sql(f"CREATE TABLE {schema}.ev (id bigint, v text, created timestamp)")
    _insert(schema, 1, 1000)
    project, job = spark_project(tmp_path, FIELDS, _source(schema), connector="postgres",
                                 spark={"partition_column": "id"})
    home = tmp_path / "home"
    assert run_here(job, home, monkeypatch)["rows_written"] == 1000
    table = catalog(home).load_table("acme.t")
    before = (table.current_snapshot().snapshot_id, table.current_snapshot().summary.additional_properties)
    committed_files = {f for f in table.inspect.files().column("file_path").to_pylist()}

    _insert(schema, 1001, 1500)
    assert _run_killed(job, home) == -signal.SIGKILL
    table = catalog(home).load_table("acme.t")
    assert (table.current_snapshot().snapshot_id, table.current_snapshot().summary.additional_properties) == before
    on_disk = {f"file://{p}" for p in (home / "warehouse").rglob("*.parquet") if "/data/" in str(p)}
    assert on_disk - committed_files  # the killed run's files are there, and no snapshot references them

    again = run_here(job, home, monkeypatch)
    assert again["rows_read"] == again["rows_written"] == 500
    ids = Counter(table_rows(home, "acme.t").column("id").to_pylist())
    assert len(ids) == 1500 and set(ids.values()) == {1}  # none lost, none twice

    # the engine switch: native continues from Spark's cursor, then Spark from native's
    native = spark_project(tmp_path, FIELDS, _source(schema), connector="postgres", engine="native")[1]
    _insert(schema, 1501, 1600)
    assert run_here(native, home, monkeypatch)["rows_written"] == 100
    spark = spark_project(tmp_path, FIELDS, _source(schema), connector="postgres", spark={"partition_column": "id"})[1]
    _insert(schema, 1601, 1650)
    assert run_here(spark, home, monkeypatch)["rows_written"] == 50
    ids = Counter(table_rows(home, "acme.t").column("id").to_pylist())
    assert len(ids) == 1650 and set(ids.values()) == {1}
    state = json.loads(catalog(home).load_table("acme.t").current_snapshot().summary.additional_properties[
        "dativo.state"])
    assert state["streams"]["ev"]["cursor"] == {"field": "created", "value": "2024-01-01T00:27:30"}
