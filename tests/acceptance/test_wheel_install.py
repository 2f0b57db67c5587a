"""A wheel install, outside the repository: the engine manifests and the registry ship inside the package.

The wheel is built from the repository and unpacked into a folder of its own, which comes first on the
path (so the editable install of the repository is not what runs); the project is an empty folder holding
only jobs/, assets/ and data — no registry, no recipes, no engines/ folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.helpers import REPO, write_yaml
from tests.integration.test_airbyte_faker import install


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(out / "dist"), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheels = list((out / "dist").glob("dativo_ingest-*.whl"))
    assert len(wheels) == 1
    site = out / "site"
    unpack = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                             str(wheels[0])], capture_output=True, text=True, timeout=300)
    assert unpack.returncode == 0, unpack.stderr
    shutil.rmtree(REPO / "build", ignore_errors=True)  # setuptools' build folder, not ours to keep
    return site


def _run(site: Path, project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    full.update({"PYTHONPATH": str(site), "DATIVO_HOME": str(project / ".home"), **(env or {})})
    return subprocess.run([sys.executable, "-m", "dativo_ingest", *args], cwd=project, env=full,
                          capture_output=True, text=True, timeout=300)


def test_the_wheel_runs_a_csv_job_and_an_airbyte_job_in_an_empty_project(wheel_site: Path, tmp_path: Path) -> None:
    where = subprocess.run([sys.executable, "-c", "import dativo_ingest; print(dativo_ingest.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(wheel_site)}, capture_output=True, text=True,
                           cwd=tmp_path)
    assert where.stdout.strip().startswith(str(wheel_site)), where.stdout  # the wheel's copy, not the repo's
    assert (wheel_site / "dativo_ingest" / "engines" / "airbyte" / "airbyte.yaml").is_file()

    project = tmp_path / "project"
    shutil.copytree(REPO / "assets" / "csv", project / "assets" / "csv")
    shutil.copytree(REPO / "assets" / "faker", project / "assets" / "faker")
    shutil.copytree(REPO / "data" / "employee", project / "data" / "employee")
    write_yaml(project / "jobs" / "acme" / "employees.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "csv_employee",
        "asset_path": "assets/csv/v1.0/employee.yaml",
        "source": {"files": [{"path": "data/employee/employees.csv", "object": "employees"}]}})
    write_yaml(project / "jobs" / "acme" / "users.yaml", {
        "tenant_id": "acme", "source_connector": "faker", "target_connector": "iceberg", "asset": "faker_users",
        "asset_path": "assets/faker/v1.0/users.yaml",
        "source": {"objects": ["users"], "connection": {"count": 50, "seed": 3}}})
    assert sorted(p.name for p in project.iterdir()) == ["assets", "data", "jobs"]

    csv = _run(wheel_site, project, "run", "--config", "jobs/acme/employees.yaml")
    assert csv.returncode == 0, csv.stderr
    assert json.loads(csv.stdout.splitlines()[-1])["rows_written"] == 20

    faker = _run(wheel_site, project, "run", "--config", "jobs/acme/users.yaml", env=install("faker"))
    assert faker.returncode == 0, faker.stderr
    assert json.loads(faker.stdout.splitlines()[-1])["rows_written"] == 50
