"""Issue #18 part 3 through the runner, and issue #12 class 6: quality rules judge what a commit writes
(strict: nothing committed; warn: recorded, exit 1; results in the snapshot, the summary and `state show`),
and two objects writing one merge table hold each key once."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml


def _project(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/people.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "people", "version": "1.0", "source_type": "csv",
        "target": {"mode": mode},
        "quality": [{"metric": "rowCount", "mustBeGreaterThan": 2}],
        "schema": [{"name": "id", "type": "long", "primary_key": True},
                   {"name": "country", "type": "string",
                    "quality": [{"metric": "invalidValues", "arguments": {"validValues": ["DE", "FR"]},
                                 "mustBe": 0}]}]})
    job = write_yaml(project / "jobs/acme/people.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "people",
        "asset_path": "assets/csv/v1.0/people.yaml",
        "source": {"files": [{"path": "data/eu.csv", "object": "eu"}, {"path": "data/all.csv", "object": "all"}]}})
    (project / "data").mkdir()
    (project / "data" / "eu.csv").write_text("id,country\n1,DE\n2,FR\n3,XX\n")
    (project / "data" / "all.csv").write_text("id,country\n1,DE\n2,FR\n3,US\n")
    return project, job


def test_strict_quality_failure_commits_nothing(tmp_path: Path) -> None:
    project, job = _project(tmp_path, "strict")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    error = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert len(error) == 1 and "quality rule(s) failed on asset people" in error[0]
    assert "nothing committed" in error[0]
    rows = table_rows(tmp_path / "home", "acme.people")
    assert rows is None or rows.num_rows == 0  # no snapshot: nothing of the run is visible


def test_warn_records_results_and_two_objects_hold_each_key_once(tmp_path: Path) -> None:
    project, job = _project(tmp_path, "warn")
    home = tmp_path / "home"
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["quality"]["failed"] == 1 and summary["quality"]["passed"] == 1
    rows = table_rows(home, "acme.people")
    assert sorted(rows.column("id").to_pylist()) == [1, 2, 3]  # 6 rows from two objects, 3 keys
    shown = json.loads(cli("state", "show", "--config", str(job), cwd=project, home=home).stdout)
    assert {r["rule"]: r["passed"] for r in shown["quality"]["rules"]}.values() and shown["quality"]["failed"] == 1
