"""The pydantic models and the generated JSON Schemas accept and reject the same files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dativo_ingest.config.export_schemas import SCHEMA_FILES, render, stale_schemas, validate_with_schema
from dativo_ingest.config.loader import parse_model
from dativo_ingest.config.models import MODELS
from dativo_ingest.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
V1 = REPO.parent / "shared" / "fixtures" / "dativo-v1"
CONFIG_FIXTURES = REPO / "tests" / "fixtures" / "config"


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml")) if folder.is_dir() else []


def _repo_files() -> list[tuple[str, Path]]:
    out = [("job", p) for p in _yaml_files(REPO / "jobs")]
    out += [("asset", p) for p in _yaml_files(REPO / "assets")]
    out += [("connector", p) for p in _yaml_files(REPO / "connectors")]
    out += [("registry", p) for p in _yaml_files(REPO / "registry")]
    out.append(("registry", REPO / "dativo_ingest" / "config" / "default_registry.yaml"))
    return out


def _v1_files() -> list[tuple[str, Path]]:
    out = [("job", p) for p in _yaml_files(V1 / "jobs")]
    out += [("asset", p) for p in _yaml_files(V1 / "assets")]
    if (V1 / "registry_connectors.yaml").is_file():
        out.append(("registry", V1 / "registry_connectors.yaml"))
    return out


def _kind_of(path: Path) -> str:
    return path.name.split("_", 1)[0]


def _ids(items: list[tuple[str, Path]]) -> list[str]:
    return [str(p.relative_to(REPO.parent)) for _, p in items]


def _load(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


REPO_FILES = _repo_files()
V1_FILES = _v1_files()
GOOD = [(_kind_of(p), p) for p in _yaml_files(CONFIG_FIXTURES / "good")]
BROKEN = [(_kind_of(p), p) for p in _yaml_files(CONFIG_FIXTURES / "broken")]


def _assert_valid(kind: str, path: Path) -> None:
    data = _load(path)
    parse_model(MODELS[kind], data, path)  # raises ConfigError if the model disagrees
    assert validate_with_schema(kind, data) == [], f"{path}: JSON Schema rejects a file the model accepts"


@pytest.mark.parametrize(("kind", "path"), REPO_FILES, ids=_ids(REPO_FILES))
def test_repo_config_files_pass_model_and_schema(kind: str, path: Path) -> None:
    _assert_valid(kind, path)


@pytest.mark.skipif(not V1.is_dir(), reason=f"dativo-v1 fixtures not found at {V1} (expected ../shared beside repo)")
@pytest.mark.parametrize(("kind", "path"), V1_FILES, ids=_ids(V1_FILES))
def test_original_v1_files_pass_model_and_schema_unchanged(kind: str, path: Path) -> None:
    _assert_valid(kind, path)


@pytest.mark.skipif(not V1.is_dir(), reason=f"dativo-v1 fixtures not found at {V1}")
def test_every_original_file_is_covered() -> None:
    kinds = {k for k, _ in V1_FILES}
    assert kinds == {"job", "asset", "registry"}
    assert len([1 for k, _ in V1_FILES if k == "job"]) >= 17
    assert len([1 for k, _ in V1_FILES if k == "asset"]) >= 14


@pytest.mark.parametrize(("kind", "path"), GOOD, ids=[p.name for _, p in GOOD])
def test_good_examples_pass_both(kind: str, path: Path) -> None:
    _assert_valid(kind, path)


@pytest.mark.parametrize(("kind", "path"), BROKEN, ids=[p.name for _, p in BROKEN])
def test_broken_examples_fail_both(kind: str, path: Path) -> None:
    data = _load(path)
    with pytest.raises(ConfigError) as info:
        parse_model(MODELS[kind], data, path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert validate_with_schema(kind, data), f"{path}: JSON Schema accepts a file the model rejects"


def test_there_are_enough_broken_examples() -> None:
    assert len(BROKEN) >= 8
    assert {k for k, _ in BROKEN} == {"job", "asset", "registry", "connector"}
    assert {k for k, _ in GOOD} == {"job", "asset", "registry", "connector"}


def test_committed_schemas_equal_generated() -> None:
    stale = stale_schemas(REPO)
    assert stale == [], f"regenerate with: python -m dativo_ingest.config.export_schemas ({stale})"


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schema_is_draft_2020_12_and_closed_where_the_model_is(kind: str) -> None:
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads(render(kind))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    if kind in ("job", "registry"):
        assert schema["additionalProperties"] is False


def test_asset_schema_path_is_the_one_the_fixtures_point_at() -> None:
    assert SCHEMA_FILES["asset"] == "schemas/odcs/dativo-odcs-3.0.2-extended.schema.json"
    for kind, path in V1_FILES:
        if kind == "asset":
            assert _load(path)["$schema"] == SCHEMA_FILES["asset"]


def test_default_registry_is_a_copy_of_the_repo_registry() -> None:
    shipped = REPO / "dativo_ingest" / "config" / "default_registry.yaml"
    assert shipped.read_bytes() == (REPO / "registry" / "connectors.yaml").read_bytes()
