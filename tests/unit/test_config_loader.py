"""load_job_plan and its parts: expansion, merge, project layout, registry, recipes, engine, modes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dativo_ingest.config import (
    deep_merge,
    discover_job_files,
    expand_vars,
    find_project_root,
    load_job_plan,
    load_registry,
    read_yaml,
)
from dativo_ingest.config.merge import without_overridden
from dativo_ingest.config.models import JobSource, JobTarget
from dativo_ingest.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
V1 = REPO.parent / "shared" / "fixtures" / "dativo-v1"

ASSET = {
    "$schema": "schemas/odcs/dativo-odcs-3.0.2-extended.schema.json",
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "name": "people",
    "version": "1.0",
    "source_type": "csv",
    "object": "people",
    "target": {"file_format": "parquet", "partitioning": ["ingest_date"]},
    "schema": [
        {"name": "id", "type": "long", "required": True},
        {"name": "name", "type": "string"},
        {"name": "updated_at", "type": "timestamp"},
    ],
}


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: the repo's registry and recipes, one asset, secrets for tenant acme."""
    root = tmp_path / "proj"
    shutil.copytree(REPO / "registry", root / "registry")
    shutil.copytree(REPO / "connectors", root / "connectors")
    _write(root / "assets/csv/v1.0/people.yaml", ASSET)
    _write(root / "secrets/acme/postgres.env", "POSTGRES_HOST=db.internal\nPOSTGRES_DB=crm\nPOSTGRES_USER=app\n"
                                                "POSTGRES_PASSWORD=s3cr3t-pw\n")
    monkeypatch.delenv("DATIVO_PROJECT_DIR", raising=False)
    for name in ("POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD", "S3_BUCKET",
                 "MINIO_ENDPOINT", "STRIPE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def _job(root: Path, name: str = "people_to_iceberg", **overrides: object) -> Path:
    job = {
        "tenant_id": "acme",
        "source_connector": "csv",
        "source_connector_path": "connectors/sources/csv.yaml",
        "target_connector": "iceberg",
        "target_connector_path": "connectors/targets/iceberg.yaml",
        "asset": "people",
        "asset_path": "assets/csv/v1.0/people.yaml",
        "source": {"files": [{"path": "data/people.csv", "object": "people"}]},
    }
    for key, value in overrides.items():
        if value is None:
            job.pop(key, None)
        else:
            job[key] = value
    return _write(root / "jobs" / "acme" / f"{name}.yaml", job)


def _plan(root: Path, job: Path, **kw: object):
    kw.setdefault("secrets_dir", root / "secrets")
    return load_job_plan(job, **kw)  # type: ignore[arg-type]


# -- expansion -----------------------------------------------------------------------------------------------


def test_expand_defaults_secrets_first_and_reports_used_names() -> None:
    data = {"a": "${X}", "b": ["${Y:-fallback}", 3], "c": {"d": "pre-${X}-post", "e": "$${LITERAL}"}}
    out, used = expand_vars(data, {"X": "one"}, path="j.yaml")
    assert out == {"a": "one", "b": ["fallback", 3], "c": {"d": "pre-one-post", "e": "${LITERAL}"}}
    assert used == {"X", "Y"}
    assert data["a"] == "${X}"  # input untouched


def test_expand_lookup_prefers_secrets_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dativo_ingest.config import make_lookup

    monkeypatch.setenv("HOST_X", "from-env")
    monkeypatch.setenv("ONLY_ENV", "env-value")
    lookup = make_lookup({"HOST_X": "from-secrets"})
    out, _ = expand_vars({"h": "${HOST_X}", "o": "${ONLY_ENV}"}, lookup)
    assert out == {"h": "from-secrets", "o": "env-value"}


def test_expand_empty_value_takes_default_but_plain_reference_keeps_empty() -> None:
    out, _ = expand_vars({"a": "${E:-d}", "b": "${E}"}, {"E": ""})
    assert out == {"a": "d", "b": ""}


def test_expand_unset_names_file_field_and_fix() -> None:
    with pytest.raises(ConfigError) as info:
        expand_vars({"target": {"connection": [{"x": "${NOPE_VAR}"}]}}, {}, path="jobs/acme/j.yaml",
                    tenant_id="acme")
    assert str(info.value) == ("jobs/acme/j.yaml: target.connection[0].x: Missing required environment variable: "
                               "NOPE_VAR (set it in secrets/acme/*.env or the environment)")


def test_expand_does_not_re_expand_values() -> None:
    out, _ = expand_vars({"a": "${A}"}, {"A": "${B}", "B": "no"})
    assert out == {"a": "${B}"}


# -- merge ---------------------------------------------------------------------------------------------------


def test_deep_merge_override_wins_dicts_merge_lists_replace() -> None:
    base = {"a": 1, "d": {"x": 1, "y": {"z": 1}}, "l": [1, 2]}
    over = {"a": 2, "d": {"y": {"w": 2}}, "l": [3]}
    merged = deep_merge(base, over)
    assert merged == {"a": 2, "d": {"x": 1, "y": {"z": 1, "w": 2}}, "l": [3]}
    merged["d"]["x"] = 99
    assert base["d"]["x"] == 1  # no shared state


def test_without_overridden_keeps_exactly_what_survives_the_merge() -> None:
    base = {"host": "${H}", "port": "${P:-1}", "s3": {"a": "${A}", "b": "${B}"}}
    over = {"host": "h", "s3": {"a": "x"}}
    pruned = without_overridden(base, over)
    assert pruned == {"port": "${P:-1}", "s3": {"b": "${B}"}}
    assert deep_merge(pruned, over) == deep_merge(base, over) | {"host": "h"}


# -- layout --------------------------------------------------------------------------------------------------


def test_find_project_root_nearest_registry_then_env_then_cwd(project: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(project)
    assert find_project_root(job) == project.resolve()
    outside = _write(tmp_path / "elsewhere" / "j.yaml", "a: 1")
    assert find_project_root(outside) == tmp_path.resolve()  # cwd (the fixture chdirs to tmp_path)
    monkeypatch.setenv("DATIVO_PROJECT_DIR", str(tmp_path / "elsewhere"))
    assert find_project_root(job) == (tmp_path / "elsewhere").resolve()


def test_load_registry_project_file_or_packaged_default(project: Path, tmp_path: Path) -> None:
    reg = load_registry(project)
    assert reg.version == 3 and "csv" in reg.connectors
    assert reg.connectors["postgres"].allowed_in_cloud is False
    assert reg.connectors["postgres"].default_engine == "meltano"
    assert "native" in reg.connectors["postgres"].engines_supported
    assert load_registry(tmp_path / "empty").connectors.keys() == reg.connectors.keys()


def test_registry_covers_guide_matrix_and_v1_registry(project: Path) -> None:
    reg = load_registry(project)
    expected = {"stripe", "hubspot", "gdrive_csv", "csv", "markdown_kv", "google_sheets", "postgres", "mysql",
                "sqlite", "iceberg", "s3", "minio", "azure_blob"}
    assert expected <= set(reg.connectors)
    assert reg.connectors["csv"].default_engine == "native"
    assert reg.connectors["iceberg"].roles == ["target"]
    assert reg.connectors["stripe"].default_engine == "airbyte"


def test_discover_job_files_sorted_yaml_only(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.txt", ".hidden.yaml"):
        _write(tmp_path / "jobs" / name, "a: 1")
    (tmp_path / "jobs" / "sub.yaml").mkdir()
    assert [p.name for p in discover_job_files(tmp_path / "jobs")] == ["a.yml", "b.yaml"]
    with pytest.raises(ConfigError, match="is not a directory"):
        discover_job_files(tmp_path / "missing")


def test_read_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(bad)
    assert str(info.value).startswith(f"{bad}: line ") and "invalid YAML" in str(info.value)


def test_read_yaml_rejects_duplicate_keys(tmp_path: Path) -> None:
    bad = _write(tmp_path / "dup.yaml", "a: 1\nb: 2\na: 3\n")
    with pytest.raises(ConfigError, match=r"line 3: .*'a' appears twice"):
        read_yaml(bad)


# -- load_job_plan -------------------------------------------------------------------------------------------


def test_plan_for_csv_job(project: Path) -> None:
    plan = _plan(project, _job(project))
    assert plan.job_name == "people_to_iceberg" and plan.tenant_id == "acme"
    assert plan.project_root == project.resolve()
    assert plan.engine == "native"
    assert plan.source_recipe is not None and plan.source_recipe.name == "csv"
    assert plan.source.delimiter == "," and plan.source.encoding == "utf-8" and plan.source.header is True
    assert plan.source.as_mapping()["files"] == [{"path": "data/people.csv", "object": "people"}]
    assert plan.target.file_format == "parquet"
    assert plan.target.connection["s3"]["region"] == "us-east-1"
    assert plan.target.connection["s3"]["endpoint"] == ""  # optional: empty means not set
    assert plan.target.catalog is None  # embedded catalog by default
    assert plan.validation_mode == "strict" and plan.write_mode == "append"
    assert plan.asset.name == "people" and plan.asset_path == project / "assets/csv/v1.0/people.yaml"
    assert plan.source_registry.roles == ["source", "target"]


def test_csv_options_precedence(project: Path) -> None:
    source = {"files": [{"path": "a.csv", "encoding": "latin-1"}], "delimiter": ";",
              "options": {"encoding": "utf-16", "header": False}, "engine": {"options": {"encoding": "utf-16-le"}}}
    plan = _plan(project, _job(project, source=source))
    assert plan.source.delimiter == ";"  # job top level beats recipe
    assert plan.source.encoding == "utf-16-le"  # source.engine.options beats source.options and recipe
    assert plan.source.header is False  # source.options beats recipe
    assert plan.source.files[0].encoding == "latin-1"  # per-file value left for the reader
    assert plan.engine_options == {"encoding": "utf-16-le"}


def test_original_flat_connector_paths_find_new_layout(project: Path) -> None:
    job = _job(project, source_connector_path="connectors/csv.yaml", target_connector_path="connectors/iceberg.yaml")
    plan = _plan(project, job)
    assert plan.source_recipe is not None and plan.target_recipe is not None
    assert plan.target_recipe.name == "iceberg"


def test_missing_recipe_path_lists_what_was_tried(project: Path) -> None:
    job = _job(project, source_connector_path="connectors/nope.yaml")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    msg = str(info.value)
    assert msg.startswith(f"{job}: source_connector_path: connector recipe not found (tried: ")
    assert "connectors/sources/nope.yaml" in msg and "\n" not in msg


def test_job_without_recipe_path_uses_convention_or_none(project: Path) -> None:
    plan = _plan(project, _job(project, source_connector_path=None, target_connector_path=None))
    assert plan.source_recipe is not None and plan.source_recipe.name == "csv"
    job = _job(project, source_connector="sqlite", source_connector_path=None,
               source={"tables": [{"name": "t"}], "connection": {"database_path": "src.db"}})
    plan = _plan(project, job)
    assert plan.source_recipe is not None and plan.source_recipe.name == "sqlite" and plan.engine == "native"
    assert plan.source.connection == {"database_path": "src.db"}
    (project / "connectors/sources/gdrive_csv.yaml").unlink()
    job = _job(project, source_connector="gdrive_csv", source_connector_path=None, source={})
    assert _plan(project, job).source_recipe is None  # no connectors/sources/gdrive_csv.yaml


def test_unknown_connector_lists_known(project: Path) -> None:
    job = _job(project, source_connector="oracle")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    msg = str(info.value)
    assert msg.startswith(f"{job}: source_connector: Job validation failed: Connector 'oracle' not found in registry — "
                          "registry/connectors.yaml knows: ")
    assert "azure_blob, csv, faker, gdrive_csv" in msg


def test_unknown_target_connector(project: Path) -> None:
    with pytest.raises(ConfigError,
                       match=r"target_connector: Job validation failed: Connector 'bigquery' not found in registry"):
        _plan(project, _job(project, target_connector="bigquery", target_connector_path=None))


def test_role_check(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"source_connector: connector 'iceberg' cannot be a source"):
        _plan(project, _job(project, source_connector="iceberg", source_connector_path=None))
    with pytest.raises(ConfigError, match=r"connector 'stripe' cannot be a target"):
        _plan(project, _job(project, target_connector="stripe", target_connector_path=None))


def test_recipe_type_must_match_role(project: Path) -> None:
    job = _job(project, source_connector="markdown_kv", source_connector_path="connectors/targets/markdown_kv.yaml")
    with pytest.raises(ConfigError, match=r"markdown_kv.yaml: type: is a target recipe but the job uses it as source"):
        _plan(project, job)


def test_engine_resolution_order(project: Path) -> None:
    pg = {"tables": [{"name": "public.people"}]}
    assert _plan(project, _job(project, source_connector="postgres", source_connector_path=None,
                               source=pg)).engine == "singer"  # recipe: meltano == singer
    job = _job(project, source_connector="postgres", source_connector_path=None,
               source={**pg, "engine": {"name": "native"}})
    assert _plan(project, job).engine == "native"  # source.engine.name beats the recipe
    job = _job(project, source_connector="postgres", source_connector_path=None, engine={"name": "meltano"},
               source={**pg, "engine": {"name": "native", "options": {"a": 1}}})
    plan = _plan(project, job)
    assert plan.engine == "singer" and plan.engine_options == {"a": 1}  # top-level engine beats everything
    (project / "connectors/sources/postgres.yaml").unlink()
    plan = _plan(project, _job(project, source_connector="postgres", source_connector_path=None, source=pg))
    assert plan.engine == "singer" and plan.source_recipe is None  # registry default_engine


def test_unsupported_engine_lists_supported(project: Path) -> None:
    job = _job(project, engine="flink")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert str(info.value) == (
        f"{job}: engine: engine 'flink' is not available (engines: native, airbyte, singer (also called meltano), "
        "spark) (use one of them; 'csv' supports native, airbyte, singer, spark)")
    job = _job(project, engine="airbyte", source_connector="sqlite", source_connector_path=None,
               source={"tables": [{"name": "t"}]})
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert str(info.value) == (
        f"{job}: engine: engine 'airbyte' is not supported by 'sqlite' (supported: native) "
        "(use one of them (the registry lists every engine that reads it))")


def test_cloud_mode_refuses_self_hosted_only_connectors(project: Path) -> None:
    job = _job(project, source_connector="postgres", source_connector_path=None,
               source={"tables": [{"name": "t"}]})
    with pytest.raises(ConfigError) as info:
        _plan(project, job, mode="cloud")
    msg = str(info.value)
    assert msg.startswith(f"{job}: source_connector: connector 'postgres' is not allowed in cloud mode")
    assert msg.endswith("(run with --mode self_hosted or choose another connector)") and "\n" not in msg
    assert _plan(project, _job(project), mode="cloud").engine == "native"
    with pytest.raises(ConfigError, match="unknown mode"):
        _plan(project, _job(project), mode="saas")


def test_recipe_template_variables_and_secret_resolution(project: Path) -> None:
    job = _job(project, source_connector="postgres", source_connector_path="connectors/sources/postgres.yaml",
               source={"tables": [{"name": "t"}], "connection": {"port": 6543}})
    plan = _plan(project, job)
    assert plan.source.connection == {"host": "db.internal", "port": 6543, "database": "crm", "user": "app",
                                         "password": "s3cr3t-pw"}
    assert {"POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"} <= set(plan.variables_used)
    assert "POSTGRES_PORT" not in plan.variables_used  # the job overrides port: its ${VAR} is never needed
    assert "s3cr3t-pw" not in repr(plan.secrets)


def test_unset_recipe_variable_is_reported_against_the_recipe(project: Path) -> None:
    (project / "secrets/acme/postgres.env").write_text("POSTGRES_HOST=h\n")
    job = _job(project, source_connector="postgres", source_connector_path=None, source={"tables": [{"name": "t"}]})
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    recipe = project / "connectors/sources/postgres.yaml"
    assert str(info.value) == (f"{recipe}: connection_template.database: Missing required environment variable: "
                               "POSTGRES_DB (set it in secrets/acme/*.env or the environment)")


def test_job_override_makes_recipe_variable_unnecessary(project: Path) -> None:
    job = _job(project, target_connector="s3", target_connector_path="connectors/targets/s3.yaml",
               target={"connection": {"bucket": "lake"}})
    plan = _plan(project, job)
    assert plan.target.connection["bucket"] == "lake" and "S3_BUCKET" not in plan.variables_used
    job = _job(project, target_connector="s3", target_connector_path="connectors/targets/s3.yaml", target=None)
    with pytest.raises(ConfigError,
                       match=r"s3.yaml: connection_template.bucket: Missing required environment variable: S3_BUCKET"):
        _plan(project, job)


def test_unset_job_variable_names_job_field(project: Path) -> None:
    job = _job(project, target={"connection": {"s3": {"bucket": "${LAKE_BUCKET}"}}})
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert str(info.value).startswith(
        f"{job}: target.connection.s3.bucket: Missing required environment variable: LAKE_BUCKET")


def test_environment_fills_variables_when_secrets_do_not(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_BUCKET", "env-bucket")
    plan = _plan(project, _job(project, target={"connection": {"s3": {"bucket": "${LAKE_BUCKET}"}}}))
    assert plan.target.connection["s3"]["bucket"] == "env-bucket"
    assert plan.job.target is not None and plan.job.target.connection == {"s3": {"bucket": "env-bucket"}}


def test_tenant_from_argument_job_or_mismatch(project: Path) -> None:
    job = _job(project)
    assert _plan(project, job, tenant_id="acme").tenant_id == "acme"
    with pytest.raises(ConfigError, match=r"tenant_id 'acme' does not match --tenant 'other'"):
        _plan(project, job, tenant_id="other")
    with pytest.raises(ConfigError, match=r"--tenant: tenant_id: invalid tenant id '\.\./x'"):
        _plan(project, job, tenant_id="../x")
    no_tenant = _job(project, "no_tenant", tenant_id=None)
    assert _plan(project, no_tenant, tenant_id="acme").tenant_id == "acme"
    assert _plan(project, no_tenant).tenant_id == "acme"  # inferred from jobs/acme/ (the seed's startup step 2)
    elsewhere = project / "other" / "no_tenant.yaml"
    elsewhere.parent.mkdir()
    no_tenant.rename(elsewhere)
    with pytest.raises(ConfigError, match=r"tenant_id: is not set"):
        _plan(project, elsewhere)


def test_bad_tenant_in_job_is_refused_before_secrets_are_read(project: Path) -> None:
    job = _job(project, tenant_id="../acme")
    with pytest.raises(ConfigError, match=r"tenant_id: invalid tenant id '\.\./acme'"):
        _plan(project, job)


def test_asset_errors(project: Path) -> None:
    job = _job(project, asset_path="assets/csv/v1.0/missing.yaml")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert str(info.value).startswith(f"{job}: asset_path: asset file not found: {project}/assets/csv/v1.0/missing")
    with pytest.raises(ConfigError, match=r"asset: asset 'persons' does not match the name 'people'"):
        _plan(project, _job(project, asset="persons"))
    _write(project / "assets/csv/v1.0/people.yaml", {**ASSET, "schema": []})
    with pytest.raises(ConfigError, match=r"people.yaml: schema: Asset definition has empty 'schema' field"):
        _plan(project, _job(project))


def test_validation_and_write_modes(project: Path) -> None:
    assert _plan(project, _job(project, schema_validation_mode="warn")).validation_mode == "warn"
    _write(project / "assets/csv/v1.0/people.yaml", {**ASSET, "target": {"mode": "warn", "write_mode": "overwrite"}})
    plan = _plan(project, _job(project))
    assert (plan.validation_mode, plan.write_mode) == ("warn", "overwrite")
    plan = _plan(project, _job(project, schema_validation_mode="strict", target={"write_mode": "append"}))
    assert (plan.validation_mode, plan.write_mode) == ("strict", "append")
    keyed = [{**ASSET["schema"][0], "primary_key": True}, *ASSET["schema"][1:]]
    _write(project / "assets/csv/v1.0/people.yaml", {**ASSET, "schema": keyed})
    plan = _plan(project, _job(project))
    assert plan.write_mode == "merge" and plan.asset.primary_key == ["id"]


def test_merge_without_primary_key_is_refused(project: Path) -> None:
    job = _job(project, target={"write_mode": "merge"})
    with pytest.raises(ConfigError, match=r"target.write_mode: write_mode merge needs a primary key"):
        _plan(project, job)


def test_job_partitioning_must_name_asset_fields(project: Path) -> None:
    assert _plan(project, _job(project, target={"partitioning": ["day(updated_at)"]})).target.partitioning
    with pytest.raises(ConfigError, match=r"target.partitioning: entry 'region' names 'region'"):
        _plan(project, _job(project, target={"partitioning": ["region"]}))


def test_catalog_string_becomes_mapping(project: Path) -> None:
    assert _plan(project, _job(project, target={"catalog": "rest"})).target.catalog == {"type": "rest"}


def test_the_plan_holds_typed_sections(project: Path) -> None:
    plan = _plan(project, _job(project, source={"files": [{"path": "a.csv", "object": "a"}],
                                                "tables": [{"name": "public.t", "cursor_field": "updated_at"}]},
                               target={"commit_every_rows": 500, "chunk_rows": 1000}))
    assert isinstance(plan.source, JobSource) and isinstance(plan.target, JobTarget)
    assert plan.source.file_entries()[0].object == "a" and plan.source.tables[0].cursor_field == "updated_at"
    assert (plan.target.commit_every_rows, plan.target.chunk_rows) == (500, 1000)
    assert plan.read.stream_cursors == {"public.t": "updated_at"}


@pytest.mark.parametrize(("target", "field"), [
    ({"commit_every_rows": "often"}, "target.commit_every_rows"),  # was int("often") at run time: internal error
    ({"commit_every_rows": -5}, "target.commit_every_rows"),
    ({"chunk_rows": 0}, "target.chunk_rows"),
    ({"parquet_target_size_mb": 0}, "target.parquet_target_size_mb"),
])
def test_bad_merged_target_values_are_refused_when_the_plan_is_built(project: Path, target: dict,
                                                                       field: str) -> None:
    with pytest.raises(ConfigError, match=rf"people_to_iceberg.yaml: {field}: "):
        _plan(project, _job(project, target=target))


def test_a_bad_value_from_the_recipe_is_refused_with_the_source_field(project: Path) -> None:
    recipe = project / "connectors/sources/csv.yaml"
    recipe.write_text(recipe.read_text().replace("header: true", "header: 'yes'"))
    with pytest.raises(ConfigError, match=r"source.header: "):
        _plan(project, _job(project))


def test_incremental_strategy_defaults_from_recipe(project: Path) -> None:
    plan = _plan(project, _job(project, source={"files": [{"path": "a.csv"}], "incremental": {"lookback_days": 0}}))
    assert plan.source.as_mapping()["incremental"] == {"lookback_days": 0, "strategy": "file_modified_time"}


def test_structure_errors_come_before_variables(project: Path) -> None:
    job = _job(project, target={"connection": {"x": "${UNSET_ONE}"}}, schedul="daily")
    with pytest.raises(ConfigError, match=r"schedul: unknown key \(did you mean 'schedule'\?\)") as info:
        _plan(project, job)
    assert len(info.value.problems) == 1  # type: ignore[attr-defined]


def test_secret_values_never_in_errors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(project / "secrets/acme/extra.env", "ASSET_DIR=hidden-dir-value\n")
    job = _job(project, asset_path="assets/${ASSET_DIR}/people.yaml")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert "asset file not found" in str(info.value)
    assert "hidden-dir-value" not in str(info.value) and "assets/***/people.yaml" in str(info.value)
    monkeypatch.setenv("MY_API_TOKEN", "env-token-value")
    job = _job(project, asset_path="assets/${MY_API_TOKEN}/people.yaml")
    with pytest.raises(ConfigError) as info:
        _plan(project, job)
    assert "env-token-value" not in str(info.value)


# -- the original v1 jobs ------------------------------------------------------------------------------------

V1_RUNNABLE = ["adventureworks_person_to_iceberg", "csv_employee_to_iceberg", "csv_person_to_s3",
               "csv_product_to_minio", "csv_product_strict_validation", "csv_employee_state_persistence",
               "postgres_person_to_iceberg_markdown_kv", "mysql_employees_to_iceberg_markdown_kv",
               "csv_employee_to_iceberg_with_catalog", "csv_listening_history_to_minio", "csv_sales_order_to_s3",
               "csv_malformed_data"]


@pytest.mark.skipif(not V1.is_dir(), reason=f"dativo-v1 fixtures not found at {V1}")
@pytest.mark.parametrize("name", V1_RUNNABLE)
def test_original_jobs_load_unchanged(project: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The v1 jobs, byte for byte, in a project laid out as they expect (tests/fixtures/...)."""
    shutil.copytree(V1 / "assets", project / "tests/fixtures/assets")
    job = project / "jobs" / "test_tenant" / f"{name}.yaml"
    job.parent.mkdir(parents=True)
    shutil.copyfile(V1 / "jobs" / f"{name}.yaml", job)
    for var, value in {"S3_ENDPOINT": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "admin",
                       "AWS_SECRET_ACCESS_KEY": "adminsecret", "AWS_REGION": "us-east-1",
                       "MINIO_ENDPOINT": "http://127.0.0.1:9000", "MINIO_ACCESS_KEY": "minio",
                       "MINIO_SECRET_KEY": "miniosecret", "OPENMETADATA_AUTH_TOKEN": "tok"}.items():
        monkeypatch.setenv(var, value)
    plan = _plan(project, job)
    raw = yaml.safe_load(job.read_text())
    assert plan.tenant_id == "test_tenant" and plan.asset.name == raw["asset"]
    assert plan.source_recipe is not None  # connectors/<name>.yaml found in connectors/sources/
    if raw["source_connector"] == "csv":
        assert plan.engine == "native" and plan.source.as_mapping()["files"] == raw["source"]["files"]
    if "engine" in raw.get("source", {}):
        assert plan.source.encoding == raw["source"]["engine"]["options"]["encoding"]
    if raw["source_connector"] in ("postgres", "mysql"):
        assert plan.source.connection["host"] == "localhost"  # the job's own ${VAR:-default}
    expected_mode = raw.get("schema_validation_mode") or plan.asset.target.mode or "strict"
    assert plan.validation_mode == expected_mode
