"""engines/airbyte.yaml: our recipes' connection mapped onto each connector's own spec, checked offline.

The specs in tests/fixtures/airbyte/specs/ are what the pinned connectors print for ``spec`` (captured from
the real packages; ``test_the_snapshots_are_the_real_specs`` compares them whenever the connector is in the
per-machine cache, and the faker/file integration tests always run the real ``spec``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dativo_ingest.config.expand import expand_vars
from dativo_ingest.config.loader import load_recipe
from dativo_ingest.engines.airbyte.manifest import (
    coerce_to_spec,
    connector_entry,
    load_manifest,
    render_config,
    secret_values,
    spec_problems,
    validate_config,
)
from dativo_ingest.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "tests" / "fixtures" / "airbyte" / "specs"

SECRETS = {
    "STRIPE_API_KEY": "sk_test_123456", "STRIPE_ACCOUNT_ID": "acct_42",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-abcdef",
    "GOOGLE_SHEETS_SPREADSHEET_ID": "1AbCdEf", "GOOGLE_SERVICE_ACCOUNT_JSON": '{"type": "service_account"}',
    "GDRIVE_FOLDER_URL": "https://drive.google.com/drive/folders/1xyz",
}


def spec_of(name: str) -> dict[str, Any]:
    return json.loads((SPECS / f"{name}.json").read_text())["connectionSpecification"]


def recipe_connection(name: str, secrets: dict[str, str]) -> dict[str, Any]:
    recipe = load_recipe(REPO / "connectors" / "sources" / f"{name}.yaml")
    connection, _ = expand_vars(recipe.connection_template, {**secrets}, path=f"{name}.yaml")
    return connection


@pytest.mark.parametrize(("name", "extra"), [
    ("stripe", {}), ("hubspot", {}), ("google_sheets", {}), ("gdrive_csv", {"stream": "files"}),
    ("faker", {}), ("csv", {"stream": "employees", "file": "/data/employees.csv"}),
])
def test_each_recipe_maps_onto_its_connectors_spec(name: str, extra: dict[str, Any]) -> None:
    entry = connector_entry(name, REPO)
    spec = spec_of(name)
    config = coerce_to_spec(render_config(entry, recipe_connection(name, SECRETS), extra=extra), spec)
    assert spec_problems(config, spec) == []
    snapshot = json.loads((SPECS / f"{name}.json").read_text())
    assert (entry.package, entry.version) == (snapshot["package"], snapshot["version"])


def test_the_mappings_put_our_keys_where_each_connector_wants_them() -> None:
    def config(name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return render_config(connector_entry(name, REPO), recipe_connection(name, SECRETS), extra=extra)

    assert config("stripe") == {"client_secret": "sk_test_123456", "account_id": "acct_42",
                                "start_date": "2020-01-01T00:00:00Z"}
    assert config("hubspot") == {"start_date": "2020-01-01T00:00:00Z", "credentials": {
        "credentials_title": "Private App Credentials", "access_token": "pat-na1-abcdef"}}
    assert config("google_sheets")["credentials"] == {"auth_type": "Service",
                                                      "service_account_info": '{"type": "service_account"}'}
    assert config("gdrive_csv", {"stream": "files"})["streams"] == [
        {"name": "files", "globs": ["**/*.csv"], "format": {"filetype": "csv"}}]
    assert config("csv", {"stream": "employees", "file": "/d/e.csv"}) == {
        "dataset_name": "employees", "format": "csv", "url": "/d/e.csv", "provider": {"storage": "local"}}
    assert config("faker") == {"count": 1000, "seed": 42, "records_per_slice": 1000, "always_updated": False,
                               "parallelism": 1}


def test_a_missing_secret_is_one_line_naming_the_spec_keys_never_values() -> None:
    for name, gone, missing in [
            ("stripe", "STRIPE_ACCOUNT_ID", "missing 'account_id'"),
            ("hubspot", "HUBSPOT_ACCESS_TOKEN", "'credentials' matches none of the allowed shapes")]:
        secrets = {**SECRETS, gone: ""}
        config = render_config(connector_entry(name, REPO), recipe_connection(name, secrets))
        with pytest.raises(ConfigError) as info:
            validate_config(config, spec_of(name), connector=name, path="jobs/acme/x.yaml")
        text = str(info.value)
        assert text.startswith(f"jobs/acme/x.yaml: source.connection: the config of Airbyte connector '{name}' "
                               "does not match its spec: ") and missing in text and "\n" not in text
        assert not any(v in text for v in SECRETS.values() if len(v) > 3)


def test_strings_from_variables_are_coerced_to_the_declared_types_and_secrets_found() -> None:
    spec = spec_of("faker")
    assert coerce_to_spec({"count": "100", "always_updated": "False", "seed": "x"}, spec) == {
        "count": 100, "always_updated": False, "seed": "x"}
    assert spec_problems({"count": "x", "parallelism": 0}, spec) == [
        "'count' must be integer (got string)", "'parallelism' must satisfy minimum 1"]
    hubspot = render_config(connector_entry("hubspot", REPO), recipe_connection("hubspot", SECRETS))
    assert secret_values(hubspot, spec_of("hubspot")) == ["pat-na1-abcdef"]


def test_job_options_override_the_manifest_and_add_raw_keys() -> None:
    entry = connector_entry("faker", REPO, {"version": "6.2.0", "launcher": "docker", "config": {"x": 1}})
    assert entry.version == "6.2.0" and entry.launcher == "docker"
    assert render_config(entry, {"count": 5}, overrides={"seed": 9}) == {"count": 5, "seed": 9}
    manifest = load_manifest(REPO)
    assert manifest.path == REPO / "dativo_ingest" / "engines" / "airbyte" / "airbyte.yaml"
    assert {"faker", "csv", "stripe", "hubspot", "google_sheets", "gdrive_csv"} <= set(manifest.entries)


@pytest.mark.parametrize("name", ["stripe", "hubspot", "google_sheets", "gdrive_csv"])
def test_the_snapshots_are_the_real_specs(name: str) -> None:
    """When the connector is installed in the per-machine cache, its real ``spec`` equals the snapshot."""
    from dativo_ingest.engines.airbyte.connector import AirbyteConnector
    from dativo_ingest.engines.launchers.choose import LauncherSpec, choose_launcher
    from tests.integration.test_airbyte_faker import connectors_cache

    entry = connector_entry(name, REPO)
    launcher = choose_launcher(LauncherSpec(package=entry.package, version=entry.version,
                                            executable=entry.executable), root=connectors_cache())
    if not launcher.is_installed():  # type: ignore[attr-defined]
        pytest.skip(f"{entry.package}=={entry.version} is not in {connectors_cache()} (no download for a spec check)")
    with AirbyteConnector(name, launcher) as conn:
        assert conn.spec(cached=False) == spec_of(name)
