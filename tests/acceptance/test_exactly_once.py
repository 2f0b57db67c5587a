"""SIGKILL at every point of a run; the next run must end with every row exactly once.

Append mode with no primary key, so a duplicate or a loss cannot hide behind a merge.
"""

import signal

import pytest

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml

POINTS = ["mid-read", "mid-stage", "before-commit", "after-commit"]


def _project(tmp_path):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/events.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0",
        "source_type": "csv", "object": "events",
        "target": {"file_format": "parquet", "partitioning": ["ingest_date"], "mode": "strict"},
        "schema": [{"name": "id", "type": "long", "required": True}, {"name": "payload", "type": "string"}],
    })
    job = write_yaml(project / "jobs/acme/csv_events_to_iceberg.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "source_connector_path": "connectors/sources/csv.yaml",
        "target_connector": "iceberg", "target_connector_path": "connectors/targets/iceberg.yaml",
        "asset": "events", "asset_path": "assets/csv/v1.0/events.yaml",
        "source": {"files": [{"path": "data/*.csv", "object": "events"}]},
        # small chunks: data files are written (uncommitted) before the end of the stream
        "target": {"write_mode": "append", "chunk_rows": 500},
    })
    (project / "data").mkdir()
    return project, job


def _write(project, name, ids):
    lines = ["id,payload"] + [f"{i},row-{i}" for i in ids]
    (project / "data" / name).write_text("\n".join(lines) + "\n")


def _ids(home):
    rows = table_rows(home, "acme.events")
    return sorted(rows.column("id").to_pylist()) if rows is not None else []


@pytest.mark.parametrize("point", POINTS)
def test_kill_on_first_run_then_rerun_loads_every_row_once(tmp_path, point):
    project, job = _project(tmp_path)
    home = tmp_path / "home"
    _write(project, "a.csv", range(0, 1500))
    _write(project, "b.csv", range(1500, 2000))
    killed = cli("run", "--config", str(job), cwd=project, home=home, env={"DATIVO_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _ids(home) == ([] if point != "after-commit" else list(range(2000)))
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == 0, again.stderr
    assert _ids(home) == list(range(2000))
    # and a third run has nothing new
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    assert _ids(home) == list(range(2000))


@pytest.mark.parametrize("point", POINTS)
def test_kill_during_an_incremental_run_keeps_earlier_commits_and_adds_new_rows_once(tmp_path, point):
    project, job = _project(tmp_path)
    home = tmp_path / "home"
    _write(project, "a.csv", range(0, 1000))
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    _write(project, "b.csv", range(1000, 2200))
    killed = cli("run", "--config", str(job), cwd=project, home=home, env={"DATIVO_FAULT": point})
    assert killed.returncode == -signal.SIGKILL
    assert _ids(home) == (list(range(1000)) if point != "after-commit" else list(range(2200)))
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == 0, again.stderr
    assert _ids(home) == list(range(2200))
