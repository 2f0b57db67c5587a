"""Per-tenant secrets: formats, errors that never show values, tenant ids, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from dativo_ingest.config import Secrets, is_secret_name, load_secrets, validate_tenant_id
from dativo_ingest.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_env_file_formats(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "db.env", "\n".join([
        "# a comment",
        "",
        "PLAIN=value",
        "export EXPORTED=yes",
        'DOUBLE="with spaces # not a comment"',
        "SINGLE='single \\n $kept'",
        "SPACED = padded  ",
        "INLINE=abc # trailing comment",
        "HASH=abc#def",
        'ESCAPED="line\\nnext \\"q\\""',
        "EMPTY=",
        "EQUALS=a=b=c",
    ]) + "\n")
    s = load_secrets(tmp_path, "acme")
    assert s.get("PLAIN") == "value"
    assert s.get("EXPORTED") == "yes"
    assert s.get("DOUBLE") == "with spaces # not a comment"
    assert s.get("SINGLE") == "single \\n $kept"
    assert s.get("SPACED") == "padded"
    assert s.get("INLINE") == "abc"
    assert s.get("HASH") == "abc#def"
    assert s.get("ESCAPED") == 'line\nnext "q"'
    assert s.get("EMPTY") == ""
    assert s.get("EQUALS") == "a=b=c"


def test_malformed_quoted_value_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "acme" / "bad.env", "OK=1\nSINGLE='it''s'\n")
    with pytest.raises(ConfigError, match=r"bad.env: line 2: unterminated or malformed quoted value"):
        load_secrets(tmp_path, "acme")
    path.write_text('OPEN="never closed\n')
    with pytest.raises(ConfigError, match=r"line 1: unterminated"):
        load_secrets(tmp_path, "acme")


def test_json_file_each_top_level_key_is_a_variable(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "stripe.json",
           '{"STRIPE_API_KEY": "sk_test_123", "RETRIES": 3, "LIVE": false, "RATIO": 0.5, "NOTHING": null,'
           ' "NESTED": {"client_secret": "nested-secret-value", "list": [1, "x"]}}')
    s = load_secrets(tmp_path, "acme")
    assert s.get("STRIPE_API_KEY") == "sk_test_123"
    assert s.get("RETRIES") == "3" and s.get("LIVE") == "false" and s.get("RATIO") == "0.5"
    assert s.get("NOTHING") == ""
    assert s.get("NESTED") == '{"client_secret":"nested-secret-value","list":[1,"x"]}'
    assert "nested-secret-value" in s.values()  # a nested value is redacted on its own too


def test_plain_files_one_value_named_by_stem(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "PGPASSWORD.txt", "  hunter22\n\n")
    _write(tmp_path / "acme" / "API_TOKEN", "tok-123\n")
    _write(tmp_path / "acme" / ".gitkeep", "")
    s = load_secrets(tmp_path, "acme")
    assert s.get("PGPASSWORD") == "hunter22" and s.get("API_TOKEN") == "tok-123"
    assert sorted(s) == ["API_TOKEN", "PGPASSWORD"]
    assert s.sources["PGPASSWORD"] == tmp_path / "acme" / "PGPASSWORD.txt"


def test_later_file_wins_in_name_order(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "a.env", "X=from-a\n")
    _write(tmp_path / "acme" / "b.env", "X=from-b\n")
    assert load_secrets(tmp_path, "acme").get("X") == "from-b"


def test_a_connectors_own_file_wins_for_that_connector(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "postgres.env", "POSTGRES_HOST=db.internal\nPOSTGRES_DB=sales\n")
    _write(tmp_path / "acme" / "shared.env", "POSTGRES_HOST=elsewhere\nREGION=eu\n")
    secrets = load_secrets(tmp_path, "acme")
    assert secrets.get("POSTGRES_HOST") == "elsewhere"  # name order, for whatever is not the connector's
    postgres = secrets.lookup("postgres")
    assert (postgres("POSTGRES_HOST"), postgres("POSTGRES_DB"), postgres("REGION")) == ("db.internal", "sales", "eu")
    assert secrets.lookup("mysql")("POSTGRES_HOST") == "elsewhere"
    assert secrets.lookup()("POSTGRES_HOST") == "elsewhere"


def test_missing_tenant_folder_or_dir_is_empty(tmp_path: Path) -> None:
    assert len(load_secrets(tmp_path, "nobody")) == 0
    assert len(load_secrets(None, "acme")) == 0


def test_tenants_are_isolated(tmp_path: Path) -> None:
    _write(tmp_path / "acme" / "x.env", "X=acme\n")
    _write(tmp_path / "globex" / "x.env", "X=globex\n")
    assert load_secrets(tmp_path, "globex").get("X") == "globex"


def test_invalid_env_line_names_file_and_line_but_not_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "acme" / "db.env", "GOOD=1\n# c\nthis-is-my-password-not-a-line\n")
    with pytest.raises(ConfigError) as info:
        load_secrets(tmp_path, "acme")
    msg = str(info.value)
    assert msg.startswith(f"{path}: line 3: expected KEY=value")
    assert "this-is-my-password" not in msg and "\n" not in msg
    path.write_text("1BAD=x\n")
    with pytest.raises(ConfigError, match=r"line 1: expected KEY=value"):
        load_secrets(tmp_path, "acme")


def test_invalid_json_names_file_and_line_but_not_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "acme" / "api.json", '{\n  "KEY": "sk_live_supersecret",\n  "B": oops\n}')
    with pytest.raises(ConfigError) as info:
        load_secrets(tmp_path, "acme")
    msg = str(info.value)
    assert msg.startswith(f"{path}: line 3: invalid JSON")
    assert "supersecret" not in msg
    path.write_text('["not", "an", "object"]')
    with pytest.raises(ConfigError, match=r"api.json: line 1: expected a JSON object"):
        load_secrets(tmp_path, "acme")


@pytest.mark.parametrize("good", ["acme", "test_tenant", "a-b-1", "0"])
def test_valid_tenant_ids(good: str) -> None:
    assert validate_tenant_id(good) == good


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "Acme", "a b", "a.b", "..", "x\n", None, 5])
def test_invalid_tenant_ids(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"tenant_id: invalid tenant id"):
        validate_tenant_id(bad)


def test_load_secrets_refuses_path_traversal(tmp_path: Path) -> None:
    _write(tmp_path / "outside.env", "X=1\n")
    with pytest.raises(ConfigError):
        load_secrets(tmp_path / "sub", "..")


@pytest.mark.parametrize(("name", "secret"), [
    ("POSTGRES_PASSWORD", True), ("stripe_api_key", True), ("AUTH_HEADER", True), ("GITHUB_TOKEN", True),
    ("GCP_CREDENTIALS", True), ("client_secret", True), ("POSTGRES_HOST", False), ("S3_BUCKET", False),
    ("AWS_REGION", False),
])
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_repr_never_shows_values() -> None:
    s = Secrets({"DB_PASSWORD": "pw-value-1", "HOST": "db.example"}, tenant_id="acme")
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "pw-value-1" not in text and "db.example" not in text
    assert "DB_PASSWORD" in repr(s)


def test_values_include_env_secrets_and_skip_short_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "env-token-xyz")
    monkeypatch.setenv("SOME_HOST", "not-secret-host")
    s = Secrets({"PORT": "80", "PIN_PASSWORD": "12", "HOST": "db.example", "LABEL": "plain-label",
                 "POSTGRES_USER": "ingest_user", "AZURE_ACCOUNT_KEY": "key-value-xyz"})
    values = s.values()
    assert "env-token-xyz" in values and "not-secret-host" not in values
    assert "plain-label" in values and "12" in values and "80" not in values
    # locations are named in errors ("cannot connect to host:port as user"); a *_KEY never is a location
    assert "db.example" not in values and "ingest_user" not in values and "key-value-xyz" in values
    assert values == sorted(values, key=len, reverse=True)


def test_redact_longest_first() -> None:
    s = Secrets({"A": "abcd", "B": "abcdefgh"})
    assert s.redact("x abcdefgh y abcd") == "x *** y ***"
