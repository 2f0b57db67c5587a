"""tap-spreadsheets (engine singer) on CSV files: the original project's seed, and the repository's demo job."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml
from tests.integration.test_singer_postgres import connectors_cache

JOB = REPO / "jobs/acme/csv_listening_history_singer.yaml"


@pytest.fixture(scope="module")
def tap_env() -> dict[str, str]:
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    tap = yaml.safe_load((REPO / "dativo_ingest/engines/singer/singer.yaml").read_text())["taps"]["csv"]
    started = time.monotonic()
    VenvLauncher(tap["pip_url"], tap["executable"], root=connectors_cache()).ensure_ready()
    print(f"\n{tap['pip_url']}: ready in {time.monotonic() - started:.1f}s")
    return {"DATIVO_CONNECTORS_DIR": str(connectors_cache())}


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "project")
    shutil.copytree(REPO / "assets", project / "assets")
    return project


def _run(project: Path, job: Path, home: Path, env: dict[str, str]) -> dict:
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_seed_csv_then_a_rerun_that_reads_nothing_new(tmp_path, fixtures_dir, tap_env):
    seed = fixtures_dir / "seeds/adventureworks/Person.csv"
    project = _project(tmp_path)
    write_yaml(project / "assets/csv/v1.0/person.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "person", "version": "1.0", "object": "person",
        "schema": [{"name": "BusinessEntityID", "type": "long", "primary_key": True, "required": True},
                   {"name": "FirstName", "type": "string"}, {"name": "LastName", "type": "string"},
                   {"name": "ModifiedDate", "type": "timestamp"}]})
    job = write_yaml(project / "jobs/acme/person.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "engine": "singer",
        "asset_path": "assets/csv/v1.0/person.yaml", "source": {"files": [{"path": str(seed), "object": "person"}]}})
    home = tmp_path / "home"
    first = _run(project, job, home, tap_env)
    assert first["rows_written"] == 10  # the fixture's README: Person.csv has 10 rows
    rows = {r["BusinessEntityID"]: r for r in table_rows(home, "acme.person").to_pylist()}
    assert rows[1]["FirstName"] == "Ken" and rows[1]["LastName"] == "Sánchez"
    assert rows[1]["ModifiedDate"] == datetime(2009, 1, 7)

    again = _run(project, job, home, tap_env)  # the file's modified time is the tap's bookmark
    assert again["rows_read"] == 0 and again["rows_written"] == 0 and again["commits"] == 0


def test_the_repository_job_runs_and_a_touched_file_is_read_again(tmp_path, tap_env):
    project = _project(tmp_path)
    shutil.copytree(REPO / "data/music_listening", project / "data/music_listening")
    job = project / "jobs/acme" / JOB.name
    job.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(JOB, job)
    home = tmp_path / "home"
    assert _run(project, job, home, tap_env)["rows_written"] == 10
    data = table_rows(home, "acme.csv_listening_history")
    first = data.sort_by("played_at").to_pylist()[0]
    assert first["user_id"] == "user_001" and first["duration_ms"] == 431000
    assert first["played_at"] == datetime(2024, 1, 15, 10, 30) and first["date"] == date(2024, 1, 15)
    assert first["hist_user_behavior_is_shuffle"] is True
    assert _run(project, job, home, tap_env)["rows_read"] == 0

    csv = project / "data/music_listening/listening_history.csv"
    stat = csv.stat()
    os.utime(csv, (stat.st_atime + 5, stat.st_mtime + 5))
    assert _run(project, job, home, tap_env)["rows_read"] == 10  # a newer file is read whole again
