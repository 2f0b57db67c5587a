"""make schema-validate: green on the repository, one line per problem and exit 2 on a broken project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dativo_ingest.config.export_schemas import SCHEMA_FILES
from dativo_ingest.config.validate import validate_project

REPO = Path(__file__).resolve().parents[2]
CONFIG_FOLDERS = ("jobs", "assets", "connectors", "registry", "configs", "schemas")


def _make(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-f", str(REPO / "Makefile"), "schema-validate", f"PYTHON={sys.executable}"],
                          cwd=project, capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's configuration folders."""
    root = tmp_path / "project"
    for folder in CONFIG_FOLDERS:
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_the_repository_validates_and_every_kind_is_checked() -> None:
    report = validate_project(REPO)
    assert report.ok, report.problems
    assert {"job", "asset", "connector", "registry", "runner"} <= set(report.checked)
    jobs = {p.name for p in report.checked["job"]}
    assert {p.name for p in (REPO / "jobs").rglob("*.yaml")} == jobs


def test_make_schema_validate_is_green_on_the_repository() -> None:
    out = _make(REPO)
    assert out.returncode == 0, out.stderr
    assert "against their JSON Schema and model: ok" in out.stdout


def test_make_schema_validate_names_each_broken_file_and_exits_2(project: Path) -> None:
    asset = project / "assets" / "csv" / "v1.0" / "employee.yaml"
    text = asset.read_text()
    asset.write_text(text.replace("employee_id, type: integer", "employee_id, type: integr"))
    job = project / "jobs" / "acme" / "faker_users_to_iceberg.yaml"
    job.write_text(job.read_text() + "shedule: daily\n")
    (project / "connectors" / "sources" / "broken.yaml").write_text("name: broken\ntype: source\nengine: [\n")
    runner = project / "configs" / "runner.yaml"
    runner.write_text(runner.read_text().replace("jobs/acme/csv_employee_to_iceberg.yaml", "jobs/acme/gone.yaml"))
    (project / "configs" / "runer.yaml").write_text("schedules: []\n")

    out = _make(project)
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 5, out.stderr
    text = "\n".join(errors)
    assert "assets/csv/v1.0/employee.yaml: schema[0].type: unknown field type 'integr'" in text
    assert "jobs/acme/faker_users_to_iceberg.yaml: shedule: unknown key (did you mean 'schedule'?)" in text
    assert "connectors/sources/broken.yaml: line 4: invalid YAML" in text
    assert "configs/runner.yaml: schedules[0].config: job file not found" in text
    assert "configs/runer.yaml: has no JSON Schema" in text
    assert "5 problems" in out.stdout


def test_a_stale_schema_file_is_a_problem(project: Path) -> None:
    schema = project / SCHEMA_FILES["job"]
    schema.write_text(schema.read_text().replace('"tenant_id"', '"tenant"', 1))
    report = validate_project(project)
    assert len(report.problems) == 1
    assert "schemas/job.schema.json: differs from the job model" in report.problems[0]
    assert "export_schemas" in report.problems[0]


def test_an_empty_folder_is_an_error_not_a_pass(tmp_path: Path) -> None:
    report = validate_project(tmp_path)
    assert not report.ok and "holds no configuration files" in report.problems[0]
