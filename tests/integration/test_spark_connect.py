# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""``engine.options.spark.master: sc://…``: the same job through a Spark Connect server (started here on a free
port with the JDBC drivers and this interpreter as its Python workers, stopped by its process group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.acceptance.helpers import table_rows
from tests.integration.spark_helpers import run_here, spark_project, spark_session_per_module  # noqa: F401
from tests.integration.test_spark_postgres import FIELDS, pg_source, pytestmark, schema, sql  # noqa: F401

pytest.importorskip("grpc_status", reason="Spark Connect needs pyspark[connect] (the spark extra has it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    port = _free_port()
    log = tmp_path_factory.mktemp("connect") / "server.log"
    env = {**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable}
    jars = ",".join(str(p) for p in (Path("/usr/share/java/postgresql.jar"),
                                     Path("/usr/share/java/mariadb-java-client.jar")) if p.exists())
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(spark_home / "bin" / "spark-submit"), "--class",
             "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", "local[2]",
             "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
             "--driver-java-options", "-Duser.timezone=UTC", "--jars", jars, "spark-internal"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Spark Connect server started" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        from dativo_ingest.engines.spark.session import stop_session

        stop_session()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_job_runs_through_spark_connect(tmp_path, schema, monkeypatch, connect_server):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, amount numeric(10,2), updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o SELECT i, 'v' || i, i * 1.5, '2024-01-01Z'::timestamptz + i * interval '1 minute'"
        f" FROM generate_series(1, 1000) i")
    project, job = spark_project(tmp_path, FIELDS, pg_source(schema, "o"), connector="postgres",
                                 target={"write_mode": "merge"}, spark={"master": connect_server})
    home = tmp_path / "home"
    assert run_here(job, home, monkeypatch)["rows_written"] == 1000
    sql(f"UPDATE {schema}.o SET v = 'changed', updated_at = '2024-02-01Z' WHERE id IN (3, 500)")
    assert run_here(job, home, monkeypatch)["rows_read"] == 2
    landed = {r["id"]: r["v"] for r in table_rows(home, "acme.t").to_pylist()}
    assert len(landed) == 1000 and landed[3] == landed[500] == "changed"
