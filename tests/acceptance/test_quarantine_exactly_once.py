"""Issue #12 class 8: quarantined rows land exactly once, with the data commit they belong to — on Iceberg and
on plain files, whether the run is killed before its data commit, between the data commit and the
quarantine's, or loses its commit."""

from __future__ import annotations

import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml


def _project(tmp_path: Path, target: str) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/events.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0",
        "source_type": "csv", "object": "events", "target": {"mode": "warn"},
        "schema": [{"name": "id", "type": "long", "required": True}, {"name": "n", "type": "integer"}]})
    target_block = {"write_mode": "append"}
    if target == "local":
        target_block["connection"] = {"path": str(tmp_path / "lake")}
    job = write_yaml(project / "jobs/acme/events.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": target, "asset": "events",
        "asset_path": "assets/csv/v1.0/events.yaml", "source": {"files": [{"path": "data/*.csv"}]},
        "target": target_block})
    (project / "data").mkdir()
    lines = ["id,n"] + [f"{i},{'bad' if i % 10 == 0 else i}" for i in range(100)]
    (project / "data" / "a.csv").write_text("\n".join(lines) + "\n")
    return project, job


def _counts(tmp_path: Path, target: str) -> tuple[int, int]:
    home = tmp_path / "home"
    if target == "iceberg":
        data, quarantine = table_rows(home, "acme.events"), table_rows(home, "acme.events__quarantine")
        return (data.num_rows if data is not None else 0), (quarantine.num_rows if quarantine is not None else 0)
    import json

    def rows(dataset: Path) -> int:
        manifests = sorted((dataset / "_manifests").glob("*.json")) if dataset.is_dir() else []
        if not manifests:
            return 0
        files = json.loads(manifests[-1].read_text())["files"]
        return sum(pq.read_metadata(dataset / f["path"]).num_rows for f in files)

    base = tmp_path / "lake" / "acme"
    return rows(base / "events"), rows(base / "events__quarantine")


@pytest.mark.parametrize("target", ["iceberg", "local"])
@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_a_kill_leaves_the_quarantine_complete_and_single_after_the_next_run(tmp_path: Path, target: str,
                                                                              point: str) -> None:
    project, job = _project(tmp_path, target)
    home = tmp_path / "home"
    killed = cli("run", "--config", str(job), cwd=project, home=home, env={"DATIVO_FAULT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _counts(tmp_path, target) == ((90, 0) if point == "after-commit" else (0, 0))
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == (0 if point == "after-commit" else 1), again.stderr  # 1: rows quarantined now
    assert _counts(tmp_path, target) == (90, 10)
    for _ in range(2):  # nothing new to read: nothing added to either table
        assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
        assert _counts(tmp_path, target) == (90, 10)


def test_a_run_that_loses_its_data_commit_publishes_no_quarantine(tmp_path: Path, monkeypatch) -> None:
    from dativo_ingest.config import load_job_plan
    from dativo_ingest.run.job import JobRun
    from dativo_ingest.sinks.base import ConcurrentCommitError

    project, job = _project(tmp_path, "iceberg")
    home = tmp_path / "home"
    monkeypatch.setenv("DATIVO_HOME", str(home))
    monkeypatch.chdir(project)
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 1
    assert _counts(tmp_path, "iceberg") == (90, 10)
    (project / "data" / "b.csv").write_text("id,n\n200,x\n201,1\n")
    run = JobRun(load_job_plan(job, secrets_dir=None))

    def lose(*args: object, **kwargs: object) -> None:
        raise ConcurrentCommitError("acme.events: another run committed first (test)")

    monkeypatch.setattr(run.sink, "commit", lose)
    with pytest.raises(ConcurrentCommitError):
        run.execute()
    assert _counts(tmp_path, "iceberg") == (90, 10)  # not the rejected 200 either, and its files are gone
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 1
    assert _counts(tmp_path, "iceberg") == (91, 11)
