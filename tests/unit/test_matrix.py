"""The registry cannot claim what the code does not run (``dativo_ingest.matrix``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dativo_ingest.config.loader import DEFAULT_REGISTRY
from dativo_ingest.config.models import Registry
from dativo_ingest.errors import ConfigError
from dativo_ingest.matrix import load_registry, registry_problems

REPO = Path(__file__).resolve().parents[2]


def _registry(**connectors: dict) -> Registry:
    return Registry.model_validate({"version": 3, "connectors": connectors})


def test_the_shipped_registry_claims_nothing_the_code_does_not_run(tmp_path):
    assert registry_problems(load_registry(REPO).__class__.model_validate(
        yaml.safe_load(DEFAULT_REGISTRY.read_text())), tmp_path) == []
    assert load_registry(tmp_path).connectors.keys() == load_registry(REPO).connectors.keys()


@pytest.mark.parametrize(("entry", "problem"), [
    ({"roles": ["source"], "default_engine": "native", "engines_supported": ["native", "jdbc"]},
     ("connectors.sqlite.engines_supported", "engine 'jdbc' is not implemented (engines: native, airbyte, singer (also "
                                        "called meltano), spark)", "remove 'jdbc'")),
    ({"roles": ["target"], "default_engine": "native", "engines_supported": ["native"]},
     ("connectors.x.roles", "'x' cannot be written (targets: iceberg, s3, minio, azure_blob, local, markdown_kv, "
                            "csv, postgres, mysql)",
      "remove 'target' from its roles")),
    ({"roles": ["source"], "default_engine": "native", "engines_supported": ["native"]},
     ("connectors.x.roles", "'x' cannot be read as a source by any engine yet", "remove 'source' from its roles")),
])
def test_each_kind_of_claim_is_refused(tmp_path, entry, problem):
    name = problem[0].split(".")[1]
    assert registry_problems(_registry(**{name: entry}), tmp_path)[0] == problem


def test_an_engine_that_cannot_read_the_connector_is_named(tmp_path):
    reg = _registry(sqlite={"roles": ["source"], "default_engine": "native", "engines_supported": ["native",
                                                                                                   "meltano"]},
                    iceberg={"roles": ["target"], "default_engine": "native", "engines_supported": ["airbyte",
                                                                                                    "native"]})
    assert registry_problems(reg, tmp_path) == [
        ("connectors.sqlite.engines_supported", "engine 'meltano' cannot read 'sqlite' (engines/singer.yaml has no "
                                                "entry 'sqlite')", "remove 'meltano'"),
        ("connectors.iceberg.engines_supported", "'iceberg' is only a target, and targets are written by the native "
                                                 "engine", "use engines_supported: [native]")]


def test_a_project_manifest_makes_a_claim_true(tmp_path):
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "connectors.yaml").write_text(yaml.safe_dump({"version": 3, "connectors": {
        "events": {"roles": ["source"], "default_engine": "airbyte", "engines_supported": ["airbyte"]}}}))
    with pytest.raises(ConfigError, match=r"connectors.yaml: connectors.events.roles: 'events' cannot be read"):
        load_registry(tmp_path)
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "airbyte.yaml").write_text("connectors:\n  events: {executable: source-events}\n")
    assert list(load_registry(tmp_path).connectors) == ["events"]


def test_validate_reports_every_claim_of_the_registry_the_code_does_not_keep(tmp_path):
    from dativo_ingest.config.validate import validate_project

    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "connectors.yaml").write_text(yaml.safe_dump({"version": 3, "connectors": {
        "iceberg": {"roles": ["target"], "default_engine": "native", "engines_supported": ["native", "flink"]},
        "google_sheets": {"roles": ["source", "target"], "default_engine": "airbyte",
                          "engines_supported": ["airbyte"]}}}))
    report = validate_project(tmp_path)
    path = Path("registry/connectors.yaml")
    assert [p.replace(str(tmp_path) + "/", "") for p in report.problems] == [  # in the file's order
        f"{path}: connectors.google_sheets.roles: 'google_sheets' cannot be written (targets: iceberg, s3, minio, "
        "azure_blob, local, markdown_kv, csv, postgres, mysql) (remove 'target' from its roles)",
        f"{path}: connectors.iceberg.engines_supported: engine 'flink' is not implemented (engines: native, "
        "airbyte, singer (also called meltano), spark) (remove 'flink')"]
