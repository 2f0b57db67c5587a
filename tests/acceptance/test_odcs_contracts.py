"""Canonical ODCS v3 contracts as a user meets them: run one, export ours, draft one from a database."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import yaml

from dativo_ingest.config.odcs import official_problems
from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml

#: the issue's contract, as a data team keeping ODCS contracts writes it: two objects, dativo keys as
#: customProperties, types as logicalType + physicalType
CONTRACT = {
    "apiVersion": "v3.1.0", "kind": "DataContract", "id": "hr-contract", "name": "hr", "version": "1.0.0",
    "status": "active",
    "customProperties": [{"property": "sourceType", "value": "csv"},
                         {"property": "target", "value": {"file_format": "parquet", "mode": "strict"}}],
    "schema": [
        {"name": "employees", "logicalType": "object", "properties": [
            {"name": "employee_id", "logicalType": "integer", "physicalType": "bigint", "required": True,
             "primaryKey": True},
            {"name": "email", "logicalType": "string", "physicalType": "varchar(200)", "classification": "PII"},
            {"name": "salary", "logicalType": "number", "physicalType": "numeric(12,2)"},
            {"name": "updated_at", "logicalType": "timestamp", "logicalTypeOptions": {"timezone": True},
             "required": True}]},
        {"name": "departments", "logicalType": "object", "properties": [
            {"name": "id", "logicalType": "integer", "primaryKey": True}]},
    ],
}
CSV = ("employee_id,email,salary,updated_at\n1,ann@acme.example,1200.50,2024-03-01T10:00:00+02:00\n"
       "2,bob@acme.example,999.99,2024-03-02T00:00:00Z\n")


def test_a_canonical_contract_runs_as_the_asset_of_a_job(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    write_yaml(project / "assets/hr/v1/hr.odcs.yaml", CONTRACT)
    (project / "data").mkdir()
    (project / "data/employees.csv").write_text(CSV)
    job = write_yaml(project / "jobs/acme/employees.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "employees",
        "asset_path": "assets/hr/v1/hr.odcs.yaml",
        "source": {"files": [{"path": "data/employees.csv", "object": "employees"}]}})

    check = cli("check", "--config", str(job), cwd=project, home=home)
    assert check.returncode == 0, check.stderr
    assert "acme.employees [engine native, merge, strict]" in check.stdout
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    rows = sorted(table_rows(home, "acme.employees").to_pylist(), key=lambda r: r["employee_id"])
    assert [(r["employee_id"], r["salary"], r["updated_at"].isoformat()) for r in rows] == [
        (1, Decimal("1200.50"), "2024-03-01T08:00:00+00:00"), (2, Decimal("999.99"), "2024-03-02T00:00:00+00:00")]


def test_a_contract_the_official_model_rejects_stops_check_with_one_line(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    broken = yaml.safe_load(yaml.safe_dump(CONTRACT))
    broken["schema"][0]["properties"][2]["logicalType"] = "decimal"
    write_yaml(project / "assets/hr.yaml", broken)
    job = write_yaml(project / "jobs/acme/employees.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
        "asset_path": "assets/hr.yaml", "source": {"objects": ["employees"]}})
    out = cli("check", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {project / 'assets/hr.yaml'}: "
                                                   "schema[0].properties[2].logicalType: "), out.stderr
    assert "'decimal' is not allowed" in lines[0] and "use one of: string" in lines[0]


def test_asset_export_writes_canonical_contracts_that_load_back(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    shutil.copytree(REPO / "assets", project / "assets")
    for path in sorted((project / "assets").rglob("*.yaml")):
        out_file = tmp_path / "odcs" / path.name
        out = cli("asset", "export", str(path), "--odcs", str(out_file), cwd=project, home=home)
        assert out.returncode == 0 and out.stderr.strip() == f"wrote {out_file}", out.stderr
        contract = yaml.safe_load(out_file.read_text())
        assert official_problems(contract) == [] and contract["apiVersion"] == "v3.2.0"
        assert {p["property"] for p in contract["customProperties"]} >= {"sourceType", "target"}
        checked = cli("asset", "validate", str(out_file), cwd=project, home=home)
        assert checked.returncode == 0 and "canonical ODCS v3: asset " in checked.stdout, checked.stderr
    stdout = cli("asset", "export", "assets/csv/v1.0/employee.yaml", "--odcs", "-", cwd=project, home=home)
    assert stdout.returncode == 0 and yaml.safe_load(stdout.stdout)["schema"][0]["name"] == "employees"


def test_asset_export_of_a_bad_file_writes_nothing(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    write_yaml(project / "assets/two.yaml", CONTRACT)
    target = tmp_path / "out.yaml"
    out = cli("asset", "export", "assets/two.yaml", "--odcs", str(target), cwd=project, home=home)
    assert out.returncode == 2 and not target.exists()
    assert out.stderr.strip() == ("ERROR: assets/two.yaml: schema: has 2 schema objects (employees, departments); "
                                  "pick one (set source.objects: [<object>] or asset: <object> in the job "
                                  "(asset export: --object))")
    out = cli("asset", "export", "assets/two.yaml", "--object", "departments", "--odcs", str(target),
              cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    assert [o["name"] for o in yaml.safe_load(target.read_text())["schema"]] == ["departments"]


def test_discover_drafts_a_canonical_contract_the_project_runs(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    db = project / "data" / "shop.db"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DECIMAL(8,2), "
                    "added DATETIME)")
        con.execute("INSERT INTO items VALUES (1, 'pen', 1.25, '2024-01-02 03:04:05'), (2, 'ink', NULL, NULL)")
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "db.env").write_text(f"SQLITE_DATABASE_PATH={db}\n")
    out = cli("discover", "--connector", "sqlite", "--tenant-id", "acme", "--table", "items", "--emit-asset",
              "--odcs", "-o", "assets/sqlite/items.yaml", cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    contract = yaml.safe_load((project / "assets/sqlite/items.yaml").read_text())
    assert official_problems(contract) == []
    props = {p["name"]: p for p in contract["schema"][0]["properties"]}
    assert props["id"]["primaryKey"] is True and props["id"]["logicalType"] == "integer"
    assert props["price"]["physicalType"] == "decimal(8,2)" and props["name"]["required"] is True
    assert {"property": "sourceType", "value": "sqlite"} in contract["customProperties"]

    job = write_yaml(project / "jobs/acme/items.yaml", {
        "tenant_id": "acme", "source_connector": "sqlite", "target_connector": "iceberg", "engine": "native",
        "asset": "items", "asset_path": "assets/sqlite/items.yaml", "source": {"tables": [{"name": "items"}]}})
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    assert sorted(r["name"] for r in table_rows(home, "acme.items").to_pylist()) == ["ink", "pen"]

    wrong = cli("discover", "--connector", "sqlite", "--tenant-id", "acme", "--odcs", cwd=project, home=home)
    assert wrong.returncode == 2 and "--odcs goes with --emit-asset" in wrong.stderr
