"""Issue #12 class 9: with target.commit_every_rows a failure says truthfully what was committed, and an
overwrite never leaves the table half refreshed (it stages everything and replaces it in one commit)."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml


def _project(tmp_path: Path, write_mode: str) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/ev.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "ev", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long"}, {"name": "n", "type": "integer"}]})
    job = write_yaml(project / "jobs/acme/ev.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "ev",
        "asset_path": "assets/csv/v1.0/ev.yaml", "source": {"files": [{"path": "data/*.csv"}]},
        "target": {"write_mode": write_mode, "commit_every_rows": 100}})
    (project / "data").mkdir()
    return project, job


def _csv(project: Path, name: str, ids: range, bad: int | None = None) -> None:
    lines = ["id,n"] + [f"{i},{'x' if i == bad else i}" for i in ids]
    (project / "data" / name).write_text("\n".join(lines) + "\n")


def test_overwrite_replaces_the_table_only_when_everything_is_staged(tmp_path: Path) -> None:
    project, job = _project(tmp_path, "overwrite")
    home = tmp_path / "home"
    _csv(project, "a.csv", range(0, 300))
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    _csv(project, "a.csv", range(1000, 1300))
    _csv(project, "b.csv", range(2000, 2300), bad=2150)  # strict: a violation in the second file
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2 and "nothing committed" in out.stderr
    assert sorted(table_rows(home, "acme.ev").column("id").to_pylist()) == list(range(300))  # untouched
    _csv(project, "b.csv", range(2000, 2300))
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    assert sorted(table_rows(home, "acme.ev").column("id").to_pylist()) == \
        list(range(1000, 1300)) + list(range(2000, 2300))


def test_a_failure_after_intermediate_commits_says_what_stays(tmp_path: Path) -> None:
    project, job = _project(tmp_path, "append")
    home = tmp_path / "home"
    _csv(project, "a.csv", range(0, 300))
    _csv(project, "b.csv", range(300, 600), bad=450)
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    error = [line for line in out.stderr.splitlines() if line.startswith("ERROR")][0]
    assert "nothing committed" not in error and "earlier commit(s) (300 rows" in error and "stay" in error
    assert sorted(table_rows(home, "acme.ev").column("id").to_pylist()) == list(range(300))
    _csv(project, "b.csv", range(300, 600))
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    assert sorted(table_rows(home, "acme.ev").column("id").to_pylist()) == list(range(600))
