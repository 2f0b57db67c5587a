"""An Iceberg table carries its asset's contract: required columns, the primary key as identifier fields,
descriptions as column docs, owner / domain / classification / compliance as properties — and keeps them in
step when the asset changes (issue #17: 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml

SECRET = "s3cr3t-0wner-t0ken"


def _asset(**changes: Any) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "people", "version": "1.0", "domain": "hr",
        "dataProduct": "staff", "source_type": "csv", "object": "people",
        "team": {"owner": "hr-data@acme.example"},
        "compliance": {"regulations": ["GDPR"], "ticket": "${OWNER_TOKEN}"},
        "schema": [
            {"name": "id", "type": "integer", "primary_key": True, "description": "The person's number"},
            {"name": "email", "type": "string", "required": True, "classification": "PII"},
            {"name": "nickname", "type": "string"},
        ],
    }
    asset.update(changes)
    return asset


def _project(tmp_path: Path) -> tuple[Path, Path, Path]:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    (project / "data").mkdir()
    (project / "data/people.csv").write_text("id,email,nickname\n1,a@x.io,\n2,b@x.io,bee\n")
    (project / "secrets/acme").mkdir(parents=True)
    (project / "secrets/acme/owner.env").write_text(f"OWNER_TOKEN={SECRET}\n")
    write_yaml(project / "assets/people.yaml", _asset())
    job = write_yaml(project / "jobs/acme/people.yaml", {
        "source_connector": "csv", "target_connector": "iceberg", "asset": "people",
        "asset_path": "assets/people.yaml", "target": {"write_mode": "overwrite"},
        "source": {"files": [{"path": "data/people.csv", "object": "people"}],
                   "incremental": {"strategy": "none"}}})
    return project, home, job


def test_the_table_keeps_required_columns_key_docs_and_properties(tmp_path: Path) -> None:
    project, home, job = _project(tmp_path)
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    table = catalog(home).load_table("acme.people")
    schema = table.schema()
    assert schema.identifier_field_names() == {"id"}
    assert {f.name: f.required for f in schema.fields if not f.name.startswith("_dativo")} == {
        "id": True, "email": True, "nickname": False}
    assert schema.find_field("id").doc == "The person's number"
    props = table.properties
    assert props["dativo.owner"] == "hr-data@acme.example" and props["dativo.domain"] == "hr"
    assert props["dativo.data_product"] == "staff"
    assert json.loads(props["dativo.classification"]) == {"email": "PII"}
    compliance = json.loads(props["dativo.compliance"])
    assert compliance == {"regulations": ["GDPR"], "ticket": "${OWNER_TOKEN}"}  # the name, never the value
    assert SECRET not in json.dumps(dict(props))
    assert table_rows(home, "acme.people").num_rows == 2


def test_a_changed_asset_changes_docs_and_properties_and_a_new_required_field_comes_optional(tmp_path: Path) -> None:
    project, home, job = _project(tmp_path)
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    changed = _asset(domain="people_ops")
    changed["schema"][0]["description"] = "The person's id in the HR system"
    changed["schema"].append({"name": "team", "type": "string", "required": True, "description": "Where"})
    write_yaml(project / "assets/people.yaml", changed)
    (project / "data/people.csv").write_text("id,email,nickname,team\n1,a@x.io,,red\n3,c@x.io,cee,blue\n")
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    table = catalog(home).load_table("acme.people")
    schema = table.schema()
    assert schema.find_field("id").doc == "The person's id in the HR system"
    assert schema.find_field("team").doc == "Where"
    assert not schema.find_field("team").required  # rows written before have no team
    assert schema.find_field("email").required and schema.identifier_field_names() == {"id"}
    assert table.properties["dativo.domain"] == "people_ops"
    rows = table_rows(home, "acme.people").sort_by("id").to_pylist()
    assert [(r["id"], r["team"]) for r in rows] == [(1, "red"), (3, "blue")]  # overwrite: this run's rows only
