"""dativo_ingest init: the shipped templates are the repository's demo files; a non-empty folder is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from dativo_ingest.config.validate import validate_project
from dativo_ingest.init import TENANT_DIR, init_project, project_files, render_template, template_files

REPO = Path(__file__).resolve().parents[2]
#: template files written for the user only (no counterpart in the repository)
PROJECT_ONLY = {"README.md", "gitignore", f"secrets/{TENANT_DIR}/gitignore"}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    return subprocess.run([sys.executable, "-m", "dativo_ingest", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("rel", [str(rel) for rel, _ in template_files() if str(rel) not in PROJECT_ONLY])
def test_each_template_is_the_repository_file_it_copies(rel: str) -> None:
    resource = dict((str(r), t) for r, t in template_files())[rel]
    in_repo = REPO / rel.replace(TENANT_DIR, "acme")
    assert in_repo.is_file(), f"{rel}: no repository file {in_repo} (add it to PROJECT_ONLY if it is new)"
    rendered = render_template(resource.read_text(encoding="utf-8"), "acme")
    assert rendered == in_repo.read_text(encoding="utf-8"), f"{rel} differs from {in_repo}: copy the change over"


def test_the_project_registry_is_the_repository_registry() -> None:
    registry = project_files("acme")[PurePosixPath("registry/connectors.yaml")]
    assert registry.decode() == (REPO / "registry" / "connectors.yaml").read_text()


def test_a_new_project_validates_for_a_tenant_with_a_dash(tmp_path: Path) -> None:
    result = init_project(tmp_path / "p", tenant="my-co")
    assert (tmp_path / "p" / "jobs" / "my-co" / "csv_employee_to_iceberg.yaml").is_file()
    assert (tmp_path / "p" / "secrets" / "my-co" / ".gitignore").read_text().splitlines()[-2:] == ["*",
                                                                                                 "!.gitignore"]
    assert "tenant_id: my-co" in (tmp_path / "p" / "jobs" / "my-co" / "csv_employee_to_iceberg.yaml").read_text()
    assert "name: my_co_employees" in (tmp_path / "p" / "configs" / "runner.yaml").read_text()
    report = validate_project(tmp_path / "p")
    assert report.ok, report.problems
    assert result.next_command.endswith("dativo_ingest run --config jobs/my-co/csv_employee_to_iceberg.yaml")
    assert not [p for p in tmp_path.iterdir() if p.name != "p"], "the staging folder was left behind"


def test_a_folder_that_is_not_empty_is_refused_in_one_line_naming_what_would_be_overwritten(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "jobs" / "acme").mkdir(parents=True)
    mine = project / "jobs" / "acme" / "csv_employee_to_iceberg.yaml"
    mine.write_text("# my own job\n")
    out = _cli("init", "p", cwd=tmp_path)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("ERROR: p: is not empty: init would overwrite jobs/acme/csv_employee_to_iceberg.yaml")
    assert "--force" in line
    assert mine.read_text() == "# my own job\n" and sorted(p.name for p in project.iterdir()) == ["jobs"]

    forced = _cli("init", "p", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "overwrote jobs/acme/csv_employee_to_iceberg.yaml" in forced.stdout
    assert mine.read_text().startswith("# Demo job")


def test_a_folder_holding_only_git_counts_as_empty_and_a_foreign_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "g" / ".git").mkdir(parents=True)
    assert _cli("init", "g", cwd=tmp_path).returncode == 0
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "notes.txt").write_text("x")
    out = _cli("init", "n", cwd=tmp_path)
    assert out.returncode == 2 and "holds notes.txt, none of which it would overwrite" in out.stderr


def test_a_file_in_the_way_and_a_bad_tenant_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "jobs").write_text("not a folder")
    out = _cli("init", "f", "--force", cwd=tmp_path)
    assert out.returncode == 2 and "f/jobs: is in the way" in out.stderr
    out = _cli("init", "t", "--tenant", "../x", cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "invalid tenant id" in out.stderr
    assert not (tmp_path / "t").exists()
