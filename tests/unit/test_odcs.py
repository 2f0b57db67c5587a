"""Canonical ODCS v3 ⇄ the flat asset dialect (config/odcs.py): types, objects, errors, round trips."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from dativo_ingest.config import load_asset, load_job_plan
from dativo_ingest.config.models import AssetDefinition
from dativo_ingest.config.odcs import (
    canonical_yaml,
    field_type,
    is_canonical,
    odcs_type,
    official_problems,
    to_canonical,
    type_from_physical,
)
from dativo_ingest.errors import ConfigError
from dativo_ingest.stage.types import parse_type

REPO = Path(__file__).resolve().parents[2]
V1_ASSETS = REPO.parent / "shared" / "fixtures" / "dativo-v1" / "assets"

#: the contract of the issue: what a data team that keeps ODCS contracts writes
ISSUE_CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.1.0", "kind": "DataContract", "id": "hr-employees", "name": "hr_employees",
    "version": "1.0.0", "status": "active",
    "schema": [{"name": "employees", "logicalType": "object", "properties": [
        {"name": "employee_id", "logicalType": "integer", "physicalType": "bigint", "required": True,
         "primaryKey": True},
        {"name": "email", "logicalType": "string", "physicalType": "varchar(200)", "classification": "PII",
         "unique": True, "description": "work address", "examples": ["ann@acme.example"]},
        {"name": "salary", "logicalType": "number", "physicalType": "numeric(12,2)"},
        {"name": "hired", "logicalType": "date"},
        {"name": "updated_at", "logicalType": "timestamp", "logicalTypeOptions": {"timezone": True}},
    ]}],
}


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_asset(path, **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


# -- loading a canonical contract -----------------------------------------------------------------------------


def test_the_issue_contract_loads_as_an_asset(tmp_path: Path) -> None:
    asset = load_asset(_write(tmp_path / "c.yaml", ISSUE_CONTRACT))
    assert asset.name == "hr_employees" and asset.object == "employees" and asset.id == "hr-employees"
    assert {f.name: f.type for f in asset.fields} == {
        "employee_id": "bigint", "email": "string", "salary": "decimal(12,2)", "hired": "date",
        "updated_at": "timestamptz"}
    first, email = asset.fields[0], asset.fields[1]
    assert first.required and first.primary_key and asset.primary_key == ["employee_id"]
    assert email.classification == "PII" and email.unique and email.description == "work address"
    assert email.examples == ["ann@acme.example"] and not email.required


def test_a_flat_asset_with_odcs_keys_is_still_flat() -> None:
    good = yaml.safe_load((REPO / "tests/fixtures/config/good/asset_people.yaml").read_text())
    assert "customProperties" in good and not is_canonical(good)
    assert is_canonical(ISSUE_CONTRACT)


@pytest.mark.parametrize(("prop", "expected"), [
    ({"logicalType": "integer", "physicalType": "bigint"}, "bigint"),  # our own name, kept as written
    ({"logicalType": "integer", "physicalType": "int8"}, "long"),
    ({"logicalType": "integer", "physicalType": "INT"}, "INT"),  # our own name, kept as written
    ({"logicalType": "integer"}, "long"),
    ({"logicalType": "integer", "logicalTypeOptions": {"format": "u64"}}, "decimal(20,0)"),
    ({"logicalType": "number", "physicalType": "NUMERIC(10, 3)"}, "decimal(10,3)"),
    ({"logicalType": "number", "physicalType": "number(38)"}, "decimal(38,0)"),
    ({"logicalType": "number"}, "double"),
    ({"logicalType": "number", "logicalTypeOptions": {"format": "f32"}}, "float"),
    ({"logicalType": "number", "physicalType": "double precision"}, "double"),
    ({"logicalType": "number", "physicalType": "real"}, "float"),
    ({"logicalType": "string", "physicalType": "character varying(20)"}, "string"),
    ({"logicalType": "string", "logicalTypeOptions": {"format": "uuid"}}, "uuid"),
    ({"logicalType": "string", "physicalType": "uniqueidentifier"}, "uuid"),
    ({"logicalType": "string", "physicalType": "bytea"}, "binary"),
    ({"logicalType": "string", "physicalType": "GEOGRAPHY"}, "string"),  # unknown physical: the logical type
    ({"logicalType": "boolean", "physicalType": "bit"}, "boolean"),
    ({"logicalType": "date", "physicalType": "date"}, "date"),
    ({"logicalType": "time", "physicalType": "time without time zone"}, "time"),
    ({"logicalType": "timestamp", "physicalType": "timestamp with time zone"}, "timestamptz"),
    ({"logicalType": "timestamp", "physicalType": "TIMESTAMP_NTZ"}, "timestamp"),
    ({"logicalType": "timestamp", "physicalType": "timestamp", "logicalTypeOptions": {"timezone": True}},
     "timestamptz"),
    ({"logicalType": "timestamp"}, "timestamp"),
    ({"logicalType": "date", "physicalType": "timestamp"}, "timestamp"),  # ODCS v3.0 wrote timestamps as date
    ({"logicalType": "object", "physicalType": "jsonb"}, "json"),
    ({"logicalType": "object"}, "json"),
    ({"logicalType": "array", "physicalType": "text[]"}, "json"),
    ({"logicalType": "array", "physicalType": "array<string>"}, "array<string>"),
    ({"physicalType": "decimal(12,2)"}, "decimal(12,2)"),
])
def test_logical_and_physical_types_map_onto_stage_types(prop: dict[str, Any], expected: str) -> None:
    assert field_type({"name": "x", **prop}, "schema[0].properties[0]", "c.yaml") == expected


@pytest.mark.parametrize("ours", [
    "string", "uuid", "integer", "int", "long", "bigint", "float", "double", "number", "boolean", "bool", "date",
    "time", "timestamp", "datetime", "timestamptz", "timestamp_tz", "json", "binary", "decimal", "decimal(12,2)",
    "decimal(10, 2)", "DECIMAL(38,9)", "TIMESTAMP", "array<string>"])
def test_every_stage_type_survives_the_trip_through_odcs(ours: str) -> None:
    prop = {"name": "x", **odcs_type(ours)}
    back = field_type(prop, "p", None)
    assert back == ours.strip()
    assert parse_type(back) == parse_type(ours)


@pytest.mark.parametrize(("prop", "problem", "fix"), [
    ({"logicalType": "integer", "physicalType": "varchar(20)"}, "logicalType 'integer' contradicts physicalType",
     "is string"),
    ({"logicalType": "timestamp", "physicalType": "timestamptz", "logicalTypeOptions": {"timezone": False}},
     "timezone false contradicts", "timezone: true"),
    ({"physicalType": "geography"}, "physicalType 'geography' is not one dativo knows", "add a logicalType"),
])
def test_types_that_lose_or_contradict_are_one_line_errors(tmp_path: Path, prop: dict[str, Any], problem: str,
                                                           fix: str) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    contract["schema"][0]["properties"][2] = {"name": "salary", "logicalType": "number", **prop}
    if "logicalType" not in prop:
        contract["schema"][0]["properties"][2] = {"name": "salary", "logicalType": "string", **prop}
        contract["schema"][0]["properties"][2].pop("logicalType")
    path = _write(tmp_path / "c.yaml", contract)
    if "logicalType" not in prop:  # the official schema wants a logicalType on every property
        assert "schema[0].properties[2].logicalType: " in _error(path)
        return
    message = _error(path)
    assert "schema[0].properties[2]" in message and problem in message and fix in message


def test_an_unknown_physical_type_is_kept_for_the_export(tmp_path: Path) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    contract["schema"][0]["properties"].append({"name": "area", "logicalType": "string", "physicalType": "GEOGRAPHY"})
    asset = load_asset(_write(tmp_path / "c.yaml", contract))
    area = asset.fields[-1]
    assert area.type == "string" and (area.model_extra or {})["physicalType"] == "GEOGRAPHY"
    exported = to_canonical(asset)["schema"][0]["properties"][-1]
    assert exported["physicalType"] == "GEOGRAPHY" and exported["logicalType"] == "string"


# -- what the official model rejects ------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field", "fix"), [
    (lambda c: c["schema"][0]["properties"][0].update(logicalType="int"),
     "schema[0].properties[0].logicalType", "use one of: string, date, timestamp"),
    (lambda c: c["schema"][0]["properties"][1].update(foo=1), "schema[0].properties[1].foo", "customProperties"),
    (lambda c: c.pop("id"), "id", "add 'id'"),
    (lambda c: c.update(source_type="csv"), "source_type", "customProperties"),
    (lambda c: c["schema"][0].update(quality=[{"metric": "rowCount"}]), "schema[0].quality[0]",
     "give one of mustBe"),
    (lambda c: c["schema"][0].update(quality=[{"metric": "rowCounts", "mustBe": 1}]),
     "schema[0].quality[0].metric", "use one of: nullValues"),
])
def test_what_the_official_model_rejects_is_one_line_naming_file_field_and_fix(tmp_path: Path, change: Any,
                                                                               field: str, fix: str) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    change(contract)
    path = _write(tmp_path / "c.yaml", contract)
    message = _error(path)
    assert message.startswith(f"{path}: {field}: ") and fix in message, message


def test_dativo_checks_speak_in_canonical_terms(tmp_path: Path) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    contract["schema"][0]["quality"] = [{"metric": "nullValues", "mustBe": 0}]
    message = _error(_write(tmp_path / "c.yaml", contract))
    assert "schema[0].quality[0]: metric nullValues is measured per property" in message
    contract["schema"][0]["quality"] = []
    contract["customProperties"] = [{"property": "target", "value": {"partitioning": ["day(nope)"]}}]
    message = _error(_write(tmp_path / "c.yaml", contract))
    assert "customProperties.target.partitioning: entry 'day(nope)' names 'nope'" in message
    contract["customProperties"] = [{"property": "name", "value": "x"}]
    assert "custom property 'name' clashes" in _error(_write(tmp_path / "c.yaml", contract))
    contract["customProperties"] = [{"property": "sourceType", "value": "csv"},
                                    {"property": "source_type", "value": "csv"}]
    assert "keep only sourceType" in _error(_write(tmp_path / "c.yaml", contract))


# -- several schema objects ----------------------------------------------------------------------------------


def _two_objects() -> dict[str, Any]:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    contract["customProperties"] = [{"property": "sourceType", "value": "csv"},
                                    {"property": "target", "value": {"mode": "warn"}}]
    contract["schema"].append({"name": "departments", "physicalName": "dept", "logicalType": "object",
                               "properties": [{"name": "id", "logicalType": "integer", "primaryKey": True}],
                               "customProperties": [{"property": "target", "value": {"mode": "strict"}}]})
    return contract


def test_a_contract_with_several_objects_is_read_one_object_at_a_time(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.yaml", _two_objects())
    employees = load_asset(path, objects=["employees"])
    departments = load_asset(path, objects=["public.dept"])  # a table name: schema.table
    assert employees.name == "employees" and employees.target.mode == "warn" and employees.source_type == "csv"
    assert departments.name == "departments" and departments.object == "dept"
    assert departments.target.mode == "strict" and departments.field_names == ["id"]
    assert load_asset(path, asset="departments").object == "dept"
    assert "has 2 schema objects (employees, dept); pick one" in _error(path)
    assert "has no schema object 'nope' (objects: employees, dept)" in _error(path, objects=["nope"])
    assert "the job reads several objects" in _error(path, objects=["employees", "dept"])


def test_a_job_picks_its_object_by_source_objects(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "registry", root / "registry")
    shutil.copytree(REPO / "connectors", root / "connectors")
    _write(root / "assets/hr/v1/hr.yaml", _two_objects())
    job = {"tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
           "asset_path": "assets/hr/v1/hr.yaml", "source": {"files": [{"path": "d.csv", "object": "dept"}]}}
    plan = load_job_plan(_write(root / "jobs/acme/dept.yaml", job), secrets_dir=None)
    assert plan.asset.name == "departments" and plan.write_mode == "merge" and plan.validation_mode == "strict"
    job["source"] = {"objects": ["employees"]}
    plan = load_job_plan(_write(root / "jobs/acme/emp.yaml", job), secrets_dir=None)
    assert plan.asset.name == "employees" and plan.validation_mode == "warn"
    job["source"] = {"files": [{"path": "d.csv"}]}
    with pytest.raises(ConfigError, match="pick one"):
        load_job_plan(_write(root / "jobs/acme/none.yaml", job), secrets_dir=None)


def test_an_object_name_that_cannot_name_a_table_is_said_where_it_is(tmp_path: Path) -> None:
    contract = _two_objects()
    contract["schema"][1]["name"] = "Departments"
    message = _error(_write(tmp_path / "c.yaml", contract), objects=["dept"])
    assert "schema[1].name: asset name 'Departments' cannot form a table name" in message


def test_variables_expand_in_a_canonical_contract_and_a_secret_may_not_name_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "registry", root / "registry")
    shutil.copytree(REPO / "connectors", root / "connectors")
    contract = _two_objects()
    contract["schema"][0]["name"] = "employees_${REGION}"
    contract["customProperties"][0]["value"] = "${KIND}"
    _write(root / "assets/hr.yaml", contract)
    job = _write(root / "jobs/acme/emp.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset_path": "assets/hr.yaml",
        "source": {"objects": ["employees_eu"]}})
    monkeypatch.setenv("REGION", "eu")
    monkeypatch.setenv("KIND", "csv")
    plan = load_job_plan(job, secrets_dir=root / "secrets")
    assert plan.asset.name == "employees_eu" and plan.asset.source_type == "csv"
    _write(root / "secrets/acme/db.env", "POSTGRES_PASSWORD=s3cr3tpw\n")
    changes = (("schema[1].properties[0].name",
                lambda c: c["schema"][1]["properties"][0].update(name="id_${POSTGRES_PASSWORD}")),
               ("schema[1].physicalName", lambda c: c["schema"][1].update(physicalName="${POSTGRES_PASSWORD}")))
    for where, change in changes:
        bad = _two_objects()
        change(bad)
        _write(root / "assets/hr.yaml", bad)
        with pytest.raises(ConfigError) as err:
            load_job_plan(job, secrets_dir=root / "secrets")
        assert f"{where}: is built from ${{POSTGRES_PASSWORD}}, a secret" in str(err.value)
        assert "s3cr3tpw" not in str(err.value)


# -- primary keys, quality rules ----------------------------------------------------------------------------


def test_primary_key_positions_keep_their_order(tmp_path: Path) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    props = contract["schema"][0]["properties"]
    props[0].update(primaryKeyPosition=2)
    props[1].update(primaryKey=True, primaryKeyPosition=1)
    asset = load_asset(_write(tmp_path / "c.yaml", contract))
    assert asset.primary_key == ["email", "employee_id"]
    exported = to_canonical(asset)["schema"][0]["properties"]
    assert [(p["name"], p["primaryKeyPosition"]) for p in exported if p.get("primaryKey")] == [
        ("employee_id", 2), ("email", 1)]
    again = load_asset(_write(tmp_path / "again.yaml", canonical_yaml(to_canonical(asset))))
    assert again.primary_key == ["email", "employee_id"] and again.fields == asset.fields


def test_quality_rules_travel_both_ways(tmp_path: Path) -> None:
    contract = yaml.safe_load(yaml.safe_dump(ISSUE_CONTRACT))
    contract["schema"][0]["quality"] = [
        {"metric": "rowCount", "mustBeGreaterThan": 0},
        {"type": "sql", "query": "SELECT count(*) FROM {object} WHERE salary < 0", "mustBe": 0, "name": "no_neg"},
        {"metric": "duplicateValues", "arguments": {"properties": ["employee_id", "email"]}, "mustBe": 0}]
    contract["schema"][0]["properties"][1]["quality"] = [
        {"metric": "invalidValues", "arguments": {"pattern": "@"}, "mustBe": 0, "severity": "error"}]
    asset = load_asset(_write(tmp_path / "c.yaml", contract))
    assert [q.metric_name or q.kind for q in asset.quality or []] == ["rowCount", "sql", "duplicateValues"]
    assert asset.fields[1].quality[0].arguments == {"pattern": "@"}
    exported = to_canonical(asset)
    assert exported["schema"][0]["quality"] == contract["schema"][0]["quality"]
    assert exported["schema"][0]["properties"][1]["quality"] == contract["schema"][0]["properties"][1]["quality"]
    assert official_problems(exported) == []


# -- the round trip, for every asset we have --------------------------------------------------------------------


def _assets() -> list[Path]:
    found = sorted((REPO / "assets").rglob("*.yaml"))
    return found + (sorted(V1_ASSETS.rglob("*.yaml")) if V1_ASSETS.is_dir() else [])


ASSETS = _assets()
#: what a canonical file says differently from the flat one without meaning anything else for a run
DOCUMENT_KEYS = {"$schema", "apiVersion"}


def _contract_view(asset: AssetDefinition) -> dict[str, Any]:
    return {k: v for k, v in asset.model_dump(by_alias=True).items() if k not in DOCUMENT_KEYS}


@pytest.mark.parametrize("path", ASSETS, ids=[str(p.relative_to(p.parents[3])) for p in ASSETS])
def test_flat_to_canonical_to_loaded_gives_the_same_asset(tmp_path: Path, path: Path) -> None:
    flat = load_asset(path)
    contract = to_canonical(flat, path)
    assert official_problems(contract) == []
    from open_data_contract_standard.model import OpenDataContractStandard

    OpenDataContractStandard.model_validate(contract)  # the official pydantic model, directly
    exported = _write(tmp_path / path.name, canonical_yaml(contract))
    assert is_canonical(yaml.safe_load(exported.read_text()))
    loaded = load_asset(exported)
    assert _contract_view(loaded) == _contract_view(flat)
    assert loaded.primary_key == flat.primary_key
    assert to_canonical(loaded) == contract  # and the export of the export is the same file


def test_the_original_fixtures_are_covered() -> None:
    if not V1_ASSETS.is_dir():
        pytest.skip(f"dativo-v1 fixtures not found at {V1_ASSETS}")
    assert len([p for p in ASSETS if V1_ASSETS in p.parents]) >= 14


def _plan_view(plan: Any) -> dict[str, Any]:
    return {"asset": _contract_view(plan.asset), "primary_key": plan.asset.primary_key, "engine": plan.engine,
            "source": plan.source, "target": plan.target, "validation_mode": plan.validation_mode,
            "write_mode": plan.write_mode, "read": plan.read, "engine_options": plan.engine_options,
            "table": f"{plan.tenant_id}.{plan.asset.name}"}


def _project(root: Path) -> Path:
    for folder in ("registry", "connectors", "jobs", "secrets", "assets"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_every_repo_job_plans_the_same_with_canonical_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.delenv("DATIVO_PROJECT_DIR", raising=False)
    monkeypatch.setenv("S3_BUCKET", "lake")  # the S3 example job's bucket (the smoke script sets it)
    flat_root, canonical_root = _project(tmp_path / "flat"), _project(tmp_path / "canonical")
    for path in sorted((canonical_root / "assets").rglob("*.yaml")):
        path.write_text(canonical_yaml(to_canonical(load_asset(path), path)))
    jobs = sorted((flat_root / "jobs").rglob("*.yaml"))
    assert len(jobs) >= 5
    for job in jobs:
        twin = canonical_root / job.relative_to(flat_root)
        a = load_job_plan(job, secrets_dir=flat_root / "secrets")
        b = load_job_plan(twin, secrets_dir=canonical_root / "secrets")
        assert _plan_view(a) == _plan_view(b), job.name


@pytest.mark.parametrize("path", ASSETS, ids=[str(p.relative_to(p.parents[3])) for p in ASSETS])
def test_a_job_on_each_asset_plans_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        path: Path) -> None:
    monkeypatch.delenv("DATIVO_PROJECT_DIR", raising=False)
    views = []
    for form in ("flat", "canonical"):
        root = tmp_path / form
        shutil.copytree(REPO / "registry", root / "registry")
        shutil.copytree(REPO / "connectors", root / "connectors")
        asset = load_asset(path)
        _write(root / "assets/a.yaml", path.read_text() if form == "flat" else canonical_yaml(to_canonical(asset)))
        job = _write(root / "jobs/t/job.yaml", {
            "tenant_id": "t", "source_connector": "csv", "target_connector": "iceberg", "asset": asset.name,
            "asset_path": "assets/a.yaml", "source": {"files": [{"path": "x.csv", "object": asset.object}]}})
        views.append(_plan_view(load_job_plan(job, secrets_dir=None)))
    assert views[0] == views[1]


def test_export_needs_a_version_and_derives_a_stable_id() -> None:
    asset = AssetDefinition.model_validate({"name": "n", "schema": [{"name": "a", "type": "string"}]})
    with pytest.raises(ConfigError, match="version: has no version, which ODCS requires"):
        to_canonical(asset, "a.yaml")
    asset = AssetDefinition.model_validate({"name": "n", "version": "2", "schema": [{"name": "a", "type": "string"}]})
    assert to_canonical(asset)["id"] == to_canonical(asset)["id"]
    assert official_problems(to_canonical(asset)) == []


def test_export_refuses_odcs_keys_that_contradict_the_type() -> None:
    asset = AssetDefinition.model_validate({"name": "n", "version": "1", "schema": [
        {"name": "a", "type": "integer", "physicalType": "varchar(3)"}]})
    with pytest.raises(ConfigError, match="contradicts"):
        to_canonical(asset, "a.yaml")


def test_sql_physical_spellings() -> None:
    assert type_from_physical("VARCHAR(255)") == "string"
    assert type_from_physical("nvarchar(max)") == "string"
    assert type_from_physical("int4") == "integer"
    assert type_from_physical("datetimeoffset") == "timestamptz"
    assert type_from_physical("varbinary(max)") == "binary"
    assert type_from_physical("point") is None
