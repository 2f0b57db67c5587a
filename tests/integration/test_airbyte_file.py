"""airbyte-source-file 0.5.39 (real, from PyPI) reading CSVs, and a job switching native ⇄ airbyte on one asset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml
from tests.conftest import SEEDS
from tests.integration.test_airbyte_faker import install


@pytest.fixture(scope="module")
def file_env() -> dict[str, str]:
    return install("csv")


def last_summary(out: Any) -> dict[str, Any]:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_seed_csv_lands_with_the_asset_types(tmp_path: Path, file_env: dict[str, str]) -> None:
    seed = SEEDS / "employee" / "Employee_Complete_Dataset.csv"
    if not seed.is_file():
        pytest.skip(f"the seed {seed} is not here")
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/employee_complete.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "employee_complete", "version": "1.0",
        "object": "employees", "schema": [
            {"name": "employee_number", "type": "long", "primary_key": True, "required": True},
            {"name": "employee_name", "type": "string", "classification": "PII"},
            {"name": "employee_age", "type": "integer"}, {"name": "maritial_status", "type": "boolean"},
            {"name": "current_salary", "type": "decimal(12,2)"}, {"name": "department", "type": "string"},
            {"name": "job_satisfaction", "type": "double"}]})
    job = write_yaml(project / "jobs/acme/employees.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
        "target_connector_path": "connectors/targets/iceberg.yaml", "engine": "airbyte",
        "asset": "employee_complete", "asset_path": "assets/csv/v1.0/employee_complete.yaml",
        "source": {"files": [{"path": str(seed), "object": "employees"}]}})
    home = tmp_path / "home"
    summary = last_summary(cli("run", "--config", str(job), cwd=project, home=home, env=file_env, timeout=300))
    assert summary["rows_written"] == 5000 and summary["rows_quarantined"] == 0
    table = table_rows(home, "acme.employee_complete")
    assert table.num_rows == 5000
    types = {f.name: str(f.field_type) for f in catalog(home).load_table("acme.employee_complete").schema().fields}
    assert types["employee_number"] == "long" and types["maritial_status"] == "boolean"
    assert types["current_salary"] == "decimal(12, 2)" and types["job_satisfaction"] == "double"
    first = next(r for r in table.to_pylist() if r["employee_number"] == 43554)
    assert first["employee_name"] == "Ananya Miller" and first["employee_age"] == 31
    assert first["maritial_status"] is True and first["department"] == "HR"


def write_csv(path: Path, rows: list[tuple[int, str, str]]) -> None:
    path.write_text("id,name,updated_at\n" + "".join(f"{i},{n},{u}\n" for i, n, u in rows))


def test_switching_engines_native_and_airbyte_keeps_the_cursor(tmp_path: Path, file_env: dict[str, str]) -> None:
    project = make_project(tmp_path / "project")
    data = project / "data" / "people.csv"
    data.parent.mkdir(parents=True)
    write_yaml(project / "assets/csv/v1.0/people.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "people", "version": "1.0", "object": "people",
        "schema": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                   {"name": "name", "type": "string"}, {"name": "updated_at", "type": "timestamp", "required": True}]})

    def run(engine: str) -> dict[str, Any]:
        job = write_yaml(project / "jobs/acme/people.yaml", {
            "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
            "target_connector_path": "connectors/targets/iceberg.yaml", "engine": engine,
            "asset": "people", "asset_path": "assets/csv/v1.0/people.yaml",
            "source": {"files": [{"path": "data/people.csv", "object": "people"}],
                       "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}})
        return last_summary(cli("run", "--config", str(job), cwd=project, home=home, env=file_env, timeout=300))

    def cursor() -> tuple[str, str]:
        snap = catalog(home).load_table("acme.people").current_snapshot()
        state = json.loads(snap.summary.additional_properties["dativo.state"])
        return state["engine"], state["streams"]["people"]["cursor"]["value"]

    home = tmp_path / "home"
    rows = [(1, "ann", "2024-01-01 10:00:00"), (2, "bob", "2024-01-02 10:00:00")]
    write_csv(data, rows)
    assert run("native")["rows_written"] == 2
    assert cursor() == ("native", "2024-01-02T10:00:00")

    rows += [(3, "cy", "2024-01-03 10:00:00"), (4, "di", "2024-01-04 10:00:00")]
    write_csv(data, rows)
    summary = run("airbyte")  # airbyte-source-file reads the whole file; the committed cursor keeps 1 and 2 out
    assert summary["rows_read"] == 4 and summary["rows_written"] == 2 and summary["rows_skipped"] == 2
    assert cursor() == ("airbyte", "2024-01-04T10:00:00")

    rows += [(5, "ed", "2024-01-05 10:00:00"), (1, "ann-old-edit", "2023-12-31 00:00:00")]
    write_csv(data, rows)
    summary = run("native")  # and back: the cursor the airbyte run advanced is the native engine's start
    assert summary["rows_written"] == 1
    assert cursor() == ("native", "2024-01-05T10:00:00")
    table = {r["id"]: r["name"] for r in table_rows(home, "acme.people").to_pylist()}
    assert table == {1: "ann", 2: "bob", 3: "cy", 4: "di", 5: "ed"}
