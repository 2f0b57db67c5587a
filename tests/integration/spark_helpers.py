"""Spark engine tests: projects with an ``engine: spark`` job, and runs in this process (one SparkSession per
test module: the JVM starts once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import make_project, write_yaml

pytest.importorskip("pyspark")

#: every test of a module uses these options: the module's one SparkSession serves them all
SPARK = {"master": "local[2]", "num_partitions": 2}


def spark_project(tmp_path: Path, fields: list[dict[str, Any]], source: dict[str, Any], *, connector: str,
                  engine: str = "spark", spark: dict[str, Any] | None = None, **job: Any) -> tuple[Path, Path]:
    """A project with the asset ``t`` and the job ``jobs/acme/t.yaml`` reading ``source`` with ``engine``."""
    project = tmp_path / "project"
    if not (project / "registry").exists():
        make_project(project)
    write_yaml(project / "assets/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": connector,
        "schema": fields})
    body: dict[str, Any] = {"tenant_id": "acme", "source_connector": connector, "target_connector": "iceberg",
                            "asset": "t", "asset_path": "assets/t.yaml", "source": source, **job}
    body["engine"] = {"name": "spark", "options": {"spark": {**SPARK, **(spark or {})}}} if engine == "spark" \
        else engine
    return project, write_yaml(project / "jobs/acme/t.yaml", body)


def run_here(job: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``dativo_ingest run --config job`` in this process (the Spark session stays up between runs)."""
    from dativo_ingest.run.dispatch import run_job
    from dativo_ingest.startup import startup_sequence

    monkeypatch.setenv("DATIVO_HOME", str(home))
    monkeypatch.delenv("STATE_DIR", raising=False)
    monkeypatch.chdir(job.parents[2])
    startup = startup_sequence(config=job, json_logs=False)
    return run_job(startup.plans[0]).summary()


@pytest.fixture(scope="module", autouse=True)
def spark_session_per_module() -> Any:
    """The module's tests share one SparkSession (made by the first run); it is stopped after the last."""
    yield
    from dativo_ingest.engines.spark.session import stop_session

    stop_session()
