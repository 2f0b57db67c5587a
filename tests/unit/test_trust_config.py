"""Issue #12, the config classes: names that cannot form identifiers or paths, ${VAR} in assets, YAML alias
bombs, and secret redaction by whole token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dativo_ingest.config import read_yaml
from dativo_ingest.config.secrets import Secrets
from dativo_ingest.errors import ConfigError
from dativo_ingest.logs import mask
from tests.unit.test_config_loader import ASSET, _job, _plan, _write, project  # noqa: F401 - fixture


def _asset(root: Path, **changes: object) -> None:
    data = {**ASSET, **changes}
    _write(root / "assets/csv/v1.0/people.yaml", data)


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"name": "a.b"}, "name", "cannot form a table name"),
    ({"name": "../x"}, "name", "cannot form a table name"),
    ({"name": "People"}, "name", "cannot form a table name"),
    ({"domain": "../../.."}, "domain", "cannot be a folder name"),
    ({"dataProduct": "a/b"}, "dataProduct", "cannot be a folder name"),
    ({"object": "../x"}, "object", "holds '/'"),
    ({"schema": [{"name": "id", "type": "long"}, {"name": "ID", "type": "long"}]}, "schema", "differ only by case"),
    ({"schema": [{"name": "_dativo_run_id", "type": "string"}]}, "schema[0].name", "system column"),
    ({"schema": [{"name": "ingest_date", "type": "date"}]}, "schema[0].name", "system column"),
    ({"schema": [{"name": "a\x07b", "type": "string"}]}, "schema[0].name", "control character"),
])
def test_unsafe_asset_names_are_one_line_errors(project: Path, changes: dict, field: str, words: str) -> None:  # noqa: F811
    _asset(project, **changes)
    with pytest.raises(ConfigError) as err:
        _plan(project, _job(project, asset=None))
    text = str(err.value)
    assert "people.yaml" in text and f"{field}:" in text and words in text and "\n" not in text


def test_a_300_character_tenant_and_an_unsafe_object_are_refused(project: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="invalid tenant id of 300 characters"):
        _plan(project, _job(project, tenant_id="a" * 300))
    with pytest.raises(ConfigError, match=r"source\.objects\[0\].*holds '/'"):
        _plan(project, _job(project, source={"objects": ["x/../../y"]}))


def test_variables_are_expanded_in_assets_and_a_secret_may_not_name_a_table(project: Path,  # noqa: F811
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _asset(project, name="people_${SUFFIX}")
    monkeypatch.setenv("SUFFIX", "eu")
    assert _plan(project, _job(project, asset=None)).asset.name == "people_eu"
    monkeypatch.delenv("SUFFIX")
    with pytest.raises(ConfigError, match=r"people\.yaml: name: Missing required environment variable: SUFFIX"):
        _plan(project, _job(project, asset=None))
    _asset(project, name="people_${POSTGRES_PASSWORD}")
    _write(project / "secrets/acme/postgres.env", "POSTGRES_PASSWORD=s3cr3tpw\n")
    with pytest.raises(ConfigError) as err:
        _plan(project, _job(project, asset=None))
    assert "name: is built from ${POSTGRES_PASSWORD}, a secret" in str(err.value) and "s3cr3tpw" not in str(err.value)


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert len(bomb.read_bytes()) < 600
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: its aliases \(\*name\) expand it beyond"):
        read_yaml(bomb)
    assert time.monotonic() - started < 5  # it used to take minutes (not a benchmark: a hang detector)
    small = tmp_path / "ok.yaml"
    small.write_text("base: &b {x: 1}\none: *b\ntwo: *b\n")
    assert read_yaml(small) == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}


def test_secrets_are_masked_as_whole_tokens_whatever_their_length() -> None:
    assert mask("jobs/acme/bad: token a is wrong", ["a"]) == "jobs/acme/bad: token *** is wrong"
    assert mask("user 'postgres' (password postgres)", ["postgres"]) == "user '***' (password ***)"
    assert mask("data/tok-9f8e.csv and tok-9f8e2", ["tok-9f8e"]) == "data/***.csv and tok-9f8e2"
    assert mask("x abcdefgh y abcd", ["abcd", "abcdefgh"]) == "x *** y ***"
    s = Secrets({"API_TOKEN": "a", "DB_PASSWORD": "p@ss.w(rd)"})
    assert s.redact("a/acme p@ss.w(rd)!") == "***/acme ***!"


def test_weak_secrets_are_named_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_USER", "postgres")
    s = Secrets({"POSTGRES_PASSWORD": "postgres", "API_TOKEN": "abc", "GOOD_SECRET": "long-enough-1",
                 "DB_USER": "admin", "ADMIN_PASSWORD": "admin"}, sources={"API_TOKEN": Path("secrets/acme/x.env")})
    lines = s.weak_secrets()
    assert any(line.startswith("secret POSTGRES_PASSWORD equals POSTGRES_USER") for line in lines)
    assert any(line.startswith("secret ADMIN_PASSWORD equals DB_USER") for line in lines)
    assert any(line.startswith("secret API_TOKEN (secrets/acme/x.env) is shorter than 8") for line in lines)
    assert not any("GOOD_SECRET" in line for line in lines)
    assert not any(value in line for line in lines for value in ("postgres'", "abc", "admin'"))


def test_variables_resolve_tenant_secrets_then_project_env_then_environment(project: Path,  # noqa: F811
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("S3_BUCKET=from-dotenv\nLAKE_PREFIX=dotenv-prefix\nDOTENV_API_TOKEN=tok-dotenv-1\n")
    (project / "registry").mkdir(exist_ok=True)
    monkeypatch.setenv("S3_BUCKET", "from-environment")
    monkeypatch.setenv("LAKE_PREFIX", "env-prefix")
    monkeypatch.setenv("ONLY_ENV", "env-only")
    job = _job(project, target={"connection": {"s3": {"bucket": "${S3_BUCKET}", "prefix": "${LAKE_PREFIX}",
                                                      "region": "${ONLY_ENV}"}}})
    plan = _plan(project, job)
    assert plan.target.connection["s3"]["bucket"] == "from-dotenv"  # .env before the environment
    assert plan.target.connection["s3"]["region"] == "env-only"
    _write(project / "secrets/acme/lake.env", "LAKE_PREFIX=from-secrets\n")
    assert _plan(project, job).target.connection["s3"]["prefix"] == "from-secrets"  # the tenant's secrets first
    assert "tok-dotenv-1" in plan.secrets.values()  # a secret-looking .env value is redacted like the others
