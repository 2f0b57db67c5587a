"""``check`` of an ``engine: spark`` job: its options, Java and the JDBC drivers, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from dativo_ingest.engines.spark import session
from dativo_ingest.engines.spark.options import spark_options
from dativo_ingest.errors import ConfigError, InfrastructureError
from tests.acceptance.helpers import cli, make_project, write_yaml

pytest.importorskip("pyspark")
JOB = Path("jobs/acme/t.yaml")


def test_options_are_validated_with_the_field_and_the_fix():
    assert spark_options({}, JOB).master == "local[2]"
    assert spark_options({"spark": {"master": "k8s://https://api:6443", "conf": {"a": True}}}, JOB).conf == {
        "a": "true"}
    with pytest.raises(ConfigError) as info:
        spark_options({"spark": {"master": "local[two]"}}, JOB)
    assert str(info.value) == ("jobs/acme/t.yaml: engine.options.spark.master: 'local[two]' is not a Spark master: "
                               "use local[N], spark://host:port, yarn, k8s://… or sc://host:port (fix the value)")
    with pytest.raises(ConfigError, match=r"engine.options.spark.partitions: Extra inputs are not permitted "
                                          r"\(remove it; known options: master, conf, partition_column"):
        spark_options({"spark": {"partitions": 4}}, JOB)
    with pytest.raises(ConfigError, match=r"engine.options.spark.num_partitions: .*greater than or equal to 1"):
        spark_options({"spark": {"num_partitions": 0}}, JOB)


def test_a_missing_driver_or_java_is_one_line_naming_the_package(tmp_path, monkeypatch):
    options = spark_options({}, JOB)
    monkeypatch.setattr(session, "JAVA_SHARE", tmp_path)  # a machine without the Debian driver packages
    with pytest.raises(InfrastructureError) as info:
        session.check_runtime(options, "mysql", JOB)
    assert str(info.value) == ("jobs/acme/t.yaml: engine spark: the mariadb JDBC driver is not installed "
                               "(apt-get install libmariadb-java, or list its jar in engine.options.spark.jars)")
    session.check_runtime(options, "csv", JOB)  # files need no driver
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    with pytest.raises(InfrastructureError, match=r"engine spark: no Java found \(install openjdk-17-jre-headless, "
                                                  r"or set JAVA_HOME\)"):
        session.check_runtime(options, "csv", JOB)


def test_check_refuses_what_spark_does_not_run(tmp_path):
    project = make_project(tmp_path / "project")
    (project / "data").mkdir()
    (project / "data" / "e.csv").write_text("id\n1\n")
    write_yaml(project / "assets/e.yaml", {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "e",
                                           "version": "1.0", "schema": [{"name": "id", "type": "long"}]})
    job = {"tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "e",
           "asset_path": "assets/e.yaml", "source": {"files": [{"path": "data/e.csv"}]},
           "engine": {"name": "spark", "options": {"spark": {"master": "mesos://x"}}}}
    path = write_yaml(project / "jobs/acme/e.yaml", job)
    out = cli("check", "--config", str(path), "--log-format", "text", cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert [line for line in out.stderr.splitlines() if line.startswith("ERROR")] == [
        f"ERROR: {path}: engine.options.spark.master: 'mesos://x' is not a Spark master: use local[N], "
        "spark://host:port, yarn, k8s://… or sc://host:port (fix the value)"]
    job["engine"] = "spark"
    job["target_connector"] = "csv"
    job["target"] = {"connection": {"path": str(tmp_path / "out")}}
    write_yaml(path, job)
    out = cli("check", "--config", str(path), "--log-format", "text", cwd=project, home=tmp_path / "home")
    lines = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert out.returncode == 2 and lines == [
        f"ERROR: {path}: target_connector: engine spark writes Iceberg tables, not 'csv' (use target_connector: "
        "iceberg, or engine: native)"], out.stderr
    job["target_connector"], job["target"] = "iceberg", {}
    write_yaml(path, job)
    out = cli("check", "--config", str(path), "--log-format", "text", cwd=project, home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
