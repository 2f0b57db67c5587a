"""The pydantic models: what they accept, what they refuse, and how refusals read."""

from __future__ import annotations

from typing import Any

import pytest

from dativo_ingest.config.loader import parse_model
from dativo_ingest.config.models import (
    AssetDefinition,
    ConnectorRecipe,
    JobConfig,
    Registry,
    partition_column,
)
from dativo_ingest.errors import ConfigError

JOB: dict[str, Any] = {"tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
                       "asset_path": "assets/x.yaml"}


def _asset(fields: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": "people", "schema": fields or [{"name": "id", "type": "long"}], **extra}


def _error(model: type, data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_model(model, data, "f.yaml")
    return info.value


# -- job -----------------------------------------------------------------------------------------------------


def test_job_engine_forms() -> None:
    assert JobConfig.model_validate({**JOB, "engine": "airbyte"}).engine_name == "airbyte"
    job = JobConfig.model_validate({**JOB, "engine": {"name": "singer", "options": {"x": 1}}})
    assert job.engine_name == "singer"
    job = JobConfig.model_validate({**JOB, "source": {"engine": {"name": "native"}}})
    assert job.engine_name == "native"
    job = JobConfig.model_validate({**JOB, "source": {"engine": {"options": {"encoding": "utf-16-le"}}}})
    assert job.engine_name is None


def test_job_source_keeps_unknown_keys_and_types_known_ones() -> None:
    job = JobConfig.model_validate({**JOB, "source": {
        "files": [{"path": "a.csv", "object": "A", "delimiter": "|", "header": False, "null_values": ["NA"],
                   "skip_rows": 2, "custom_reader_flag": True}],
        "tables": [{"name": "s.t", "object": "t", "cursor_field": "u", "primary_key": ["id"]}],
        "objects": ["customers"], "query": "select 1", "connector_specific": {"a": 1},
        "incremental": {"strategy": "cursor", "cursor_field": "u", "lookback_days": 0, "lookback": "1d"}}})
    assert job.source is not None and job.source.files is not None
    assert job.source.files[0].skip_rows == 2
    assert job.source.files[0].model_extra == {"custom_reader_flag": True}
    assert job.source.model_extra == {"connector_specific": {"a": 1}}


@pytest.mark.parametrize(("patch", "field"), [
    ({"source": {"header": "true"}}, "source.header"),
    ({"source": {"skip_rows": -1}}, "source.skip_rows"),
    ({"source": {"null_values": "NA"}}, "source.null_values"),
    ({"source": {"files": [{"path": 5}]}}, "source.files[0].path"),
    ({"source": {"tables": [{"object": "x"}]}}, "source.tables[0].name"),
    ({"source": {"incremental": {"strategy": "sometimes"}}}, "source.incremental.strategy"),
    ({"source": {"incremental": {"cursor": "x"}}}, "source.incremental.cursor"),
    ({"target": {"write_mode": "upsert"}}, "target.write_mode"),
    ({"target": {"file_format": "parqet"}}, "target.file_format"),
    ({"target": {"partitioning": ["month(a, b)"]}}, "target.partitioning[0]"),
    ({"schema_validation_mode": "lax"}, "schema_validation_mode"),
    ({"logging": {"level": "loud"}}, "logging.level"),
    ({"logging": {"redact": True}}, "logging.redact"),
    ({"schedule": 5}, "schedule"),
    ({"tenant_id": "a/b"}, "tenant_id"),
    ({"engine": {"name": "Native!"}}, "engine.name"),
    ({"asset_pth": "x"}, "asset_pth"),
])
def test_job_errors_name_the_field(patch: dict[str, Any], field: str) -> None:
    err = _error(JobConfig, {**JOB, **patch})
    assert str(err).startswith(f"f.yaml: {field}: "), str(err)
    assert "\n" not in str(err) and str(err).endswith(")")


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    err = _error(JobConfig, {**JOB, "soruce": {}})
    assert str(err) == "f.yaml: soruce: unknown key (did you mean 'source'?)"


def test_missing_required_job_fields_all_reported() -> None:
    err = _error(JobConfig, {"tenant_id": "acme"})
    assert str(err) == "f.yaml: source_connector: is required (add 'source_connector')"
    assert err.problems == [  # type: ignore[attr-defined]
        "f.yaml: source_connector: is required (add 'source_connector')",
        "f.yaml: target_connector: is required (add 'target_connector')",
        "f.yaml: asset_path: is required (add 'asset_path')",
    ]


def test_job_error_never_shows_the_offending_value() -> None:
    err = _error(JobConfig, {**JOB, "target": {"write_mode": "hunter2-password"}})
    assert "hunter2" not in str(err)


# -- asset ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", [
    "string", "STRING", "integer", "int", "long", "bigint", "float", "double", "number", "boolean", "bool", "date",
    "time", "timestamp", "timestamptz", "timestamp_tz", "datetime", "json", "binary", "uuid", "decimal",
    "decimal(10,2)", "Decimal(38, 9)", "array<string>", "array<decimal(5,1)>",
])
def test_field_types_accepted(type_name: str) -> None:
    assert AssetDefinition.model_validate(_asset([{"name": "x", "type": type_name}])).fields[0].type == type_name


@pytest.mark.parametrize("type_name", ["varchar", "str", "decimal(10)", "decimal(a,b)", "array<>", "array",
                                       "string ", "map<string,int>", ""])
def test_field_types_refused(type_name: str) -> None:
    err = _error(AssetDefinition, _asset([{"name": "x", "type": type_name}]))
    assert str(err).startswith("f.yaml: schema[0].type: unknown field type"), str(err)


@pytest.mark.parametrize("entry", ["ingest_date", "id", "day(ts)", "MONTH(ts)", "year( ts )", "hour(ts)",
                                   "identity(id)", "bucket(16, id)", "truncate(4,id)", "day(ingest_date)",
                                   "day(_dativo_ingest_ts)"])
def test_partitioning_accepted(entry: str) -> None:
    asset = AssetDefinition.model_validate(_asset([{"name": "id", "type": "long"}, {"name": "ts", "type": "timestamp"}],
                                                  target={"partitioning": [entry]}))
    assert asset.target is not None and asset.target.partitioning == [entry]


@pytest.mark.parametrize("entry", ["bucket(id)", "truncate(id, 4)", "week(ts)", "day()", "day(ts", "a b", "1col"])
def test_partitioning_syntax_refused(entry: str) -> None:
    err = _error(AssetDefinition, _asset(target={"partitioning": [entry]}))
    assert str(err).startswith(f"f.yaml: target.partitioning[0]: invalid partitioning entry '{entry}'")


@pytest.mark.parametrize(("entry", "column"), [("region", "region"), ("day(created)", "created"),
                                               ("bucket(8, tenant)", "tenant")])
def test_partition_column_must_be_a_field(entry: str, column: str) -> None:
    err = _error(AssetDefinition, _asset(target={"partitioning": [entry]}))
    assert str(err).startswith(f"f.yaml: target.partitioning: entry '{entry}' names '{column}', which is not a "
                               "schema field or ingest_date")


def test_partition_column_helper() -> None:
    assert partition_column("bucket(16, id)") == "id"
    assert partition_column("day( ts )") == "ts"
    assert partition_column("region") == "region"


def test_empty_schema_uses_the_guide_message() -> None:
    err = _error(AssetDefinition, {"name": "a", "schema": []})
    assert str(err) == "f.yaml: schema: Asset definition has empty 'schema' field"
    err = _error(AssetDefinition, {"name": "a", "schema": None})
    assert "Asset definition has empty 'schema' field" in str(err)


def test_duplicate_field_names_refused() -> None:
    err = _error(AssetDefinition, _asset([{"name": "id", "type": "long"}, {"name": "id", "type": "string"}]))
    assert "field 'id' is declared twice" in str(err)


def test_primary_key_in_schema_order() -> None:
    asset = AssetDefinition.model_validate(_asset([
        {"name": "b", "type": "long", "primary_key": True},
        {"name": "x", "type": "string"},
        {"name": "a", "type": "long", "primary_key": True},
    ]))
    assert asset.primary_key == ["b", "a"]
    assert AssetDefinition.model_validate(_asset()).primary_key == []


def test_asset_odcs_extras_and_aliases() -> None:
    asset = AssetDefinition.model_validate(_asset(**{
        "$schema": "schemas/odcs/x.json", "description": {"purpose": "p", "limitations": None, "usage": "u"},
        "servers": [{"server": "prod"}], "team": [{"username": "a"}]}))
    assert asset.schema_uri == "schemas/odcs/x.json"
    assert asset.model_extra == {"servers": [{"server": "prod"}]}
    dumped = asset.model_dump(by_alias=True, exclude_none=True)
    assert dumped["$schema"] == "schemas/odcs/x.json" and dumped["schema"][0]["name"] == "id"


def test_asset_target_modes() -> None:
    err = _error(AssetDefinition, _asset(target={"mode": "lenient"}))
    assert str(err).startswith("f.yaml: target.mode: must be 'strict' or 'warn'")


# -- recipe and registry -------------------------------------------------------------------------------------


def test_recipe_engine_forms_and_extras() -> None:
    r = ConnectorRecipe.model_validate({"name": "x", "type": "source", "engine": "native"})
    assert (r.engine_name, r.engine_options, r.connection_template) == ("native", {}, {})
    r = ConnectorRecipe.model_validate({"name": "x", "type": "target", "engine": {"name": "airbyte",
                                        "options": {"image": "i"}}, "docs": "d"})
    assert (r.engine_name, r.engine_options, r.model_extra) == ("airbyte", {"image": "i"}, {"docs": "d"})


def test_registry_version_must_be_3() -> None:
    err = _error(Registry, {"version": 2, "connectors": {}})
    assert str(err) == "f.yaml: version: '2' is not allowed; must be 3 (use one of the allowed values)"
    assert Registry.model_validate({"version": 3, "connectors": {}}).connectors == {}


def test_registry_defaults_and_unknown_capability() -> None:
    reg = Registry.model_validate({"version": 3, "connectors": {
        "x": {"roles": ["source"], "default_engine": "native", "engines_supported": ["native"]}}})
    x = reg.connectors["x"]
    assert x.allowed_in_cloud is True and x.supports_incremental is False and x.requires_tables is False
    err = _error(Registry, {"version": 3, "connectors": {
        "x": {"roles": ["source"], "default_engine": "native", "engines_supported": ["native"], "cloud": True}}})
    assert str(err).startswith("f.yaml: connectors.x.cloud: unknown key")


def test_registry_default_engine_must_be_supported() -> None:
    err = _error(Registry, {"version": 3, "connectors": {
        "x": {"roles": ["source"], "default_engine": "airbyte", "engines_supported": ["native"]}}})
    assert str(err) == ("f.yaml: connectors.x: default_engine 'airbyte' is not in engines_supported "
                        "(add it to engines_supported: native)")


def test_registry_roles_must_not_be_empty() -> None:
    err = _error(Registry, {"version": 3, "connectors": {
        "x": {"roles": [], "default_engine": "native", "engines_supported": ["native"]}}})
    assert str(err).startswith("f.yaml: connectors.x.roles: must not be empty")
