"""Per-tenant secrets: ``secrets/<tenant>/`` holding ``*.env``, ``*.json`` and plain one-value files.

A value read here never appears in an error message: errors name the file and the line only.
"""

from __future__ import annotations

import json
import os
import re
from collections import ChainMap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dativo_ingest.config.expand import Lookup, make_lookup
from dativo_ingest.config.names import TENANT_FIX, tenant_problem
from dativo_ingest.errors import ConfigError
from dativo_ingest.logs import mask

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
_MIN_PLAIN = 4
#: secrets shorter than this draw a warning at start-up (see ``Secrets.weak_secrets``)
WEAK_SECRET_LEN = 8
#: where a service is, not how to get in: shown in errors ("cannot connect to host:port as user, database")
_LOCATION_NAME_RE = re.compile(
    r"(^|_)(HOST|HOSTNAME|PORT|DB|DATABASE|DBNAME|USER|USERNAME|REGION|BUCKET|ENDPOINT|SCHEMA|CONTAINER|"
    r"ACCOUNT_NAME)$", re.IGNORECASE)
_ENV_FIX = "write KEY=value, one per line; '#' starts a comment"


def is_secret_name(name: str) -> bool:
    """True for names that look like they hold a credential (``*_PASSWORD``, ``API_KEY``, ``AUTH_TOKEN``…)."""
    return bool(_SECRET_NAME_RE.search(name))


def is_location_name(name: str) -> bool:
    """True for names that say where a service is (``POSTGRES_HOST``, ``S3_BUCKET``, ``MYSQL_USER``…), which
    errors must name; a name that also looks secret (``ACCOUNT_KEY``) is not one."""
    return bool(_LOCATION_NAME_RE.search(name)) and not is_secret_name(name)


def validate_tenant_id(tenant_id: Any, *, path: str | Path | None = None) -> str:
    """Return ``tenant_id`` if it is a valid tenant id (``config.names``); it becomes a folder name and an
    Iceberg namespace, so nothing else is allowed."""
    problem = tenant_problem(tenant_id) if isinstance(tenant_id, str) and tenant_id else \
        f"invalid tenant id {repr(tenant_id)[:60] if tenant_id not in (None, '') else 'empty'}"
    if problem:
        raise ConfigError(path, problem, field="tenant_id", fix=TENANT_FIX)
    return tenant_id


class Secrets:
    """Name -> value for one tenant. ``repr`` shows names only; ``values()`` lists what logs must redact."""

    def __init__(self, data: Mapping[str, str] | None = None, *, tenant_id: str | None = None,
                 sources: Mapping[str, Path] | None = None, extra_values: list[str] | None = None,
                 project_env: Mapping[str, str] | None = None,
                 by_file: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._data: dict[str, str] = dict(data or {})
        #: each file's own values by the file's stem (``postgres`` for ``postgres.env``): a connector's file wins
        #: for that connector (``lookup(connector)``)
        self.by_file: dict[str, dict[str, str]] = {k: dict(v) for k, v in (by_file or {}).items()}
        self._extra = [v for v in (extra_values or []) if v]
        self.tenant_id = tenant_id
        #: the project's ``.env`` (``KEY=value``): looked up after the tenant's secrets, before the environment
        self.project_env: dict[str, str] = dict(project_env or {})
        #: which file each name came from (for "set in secrets/acme/postgres.env" messages)
        self.sources: dict[str, Path] = dict(sources or {})

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._data.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def names(self) -> list[str]:
        """The tenant's secret names, sorted."""
        return sorted(self._data)

    def lookup(self, connector: str | None = None) -> Lookup:
        """How ``${VAR}`` is resolved: the tenant's secrets, then the project's ``.env``, then the environment.
        For ``connector``, its own file (``secrets/<tenant>/<connector>.env`` or ``.json``) comes first: a name
        another file of the tenant also sets does not change that connector."""
        own = self.by_file.get(connector) if connector else None
        return make_lookup(ChainMap(own, self._data) if own else self, ChainMap(self.project_env, os.environ))

    def as_env(self) -> dict[str, str]:
        """The secrets as environment variables (for a connector subprocess)."""
        return dict(self._data)

    def values(self) -> list[str]:
        """Every value to redact, longest first (so replacing them in order is safe): the secret files' values
        (and the string leaves of nested JSON ones) and the values of environment variables whose names look
        secret. Values shorter than 4 characters are left out unless their name looks secret: a port "80" or a
        flag "true" would otherwise be masked in every message. Locations (``*_HOST``, ``*_PORT``, ``*_DB``,
        ``*_USER``, ``*_BUCKET``, ``*_ENDPOINT``…) are left out too: errors must say where they could not
        connect."""
        found = {v for k, v in self._data.items()
                 if (len(v) >= _MIN_PLAIN and not is_location_name(k)) or (v and is_secret_name(k))}
        found |= {v for v in self._extra if len(v) >= _MIN_PLAIN}
        for name, value in ChainMap(self.project_env, os.environ).items():
            if value and is_secret_name(name):
                found.add(value)
        return sorted(found, key=len, reverse=True)

    def _named(self) -> dict[str, str]:
        """value → variable name, for every value ``values()`` redacts that has a name (longest value first)."""
        wanted = set(self.values())
        named: dict[str, str] = {}
        for name, value in [*ChainMap(self.project_env, os.environ).items(), *self._data.items()]:
            if value in wanted and (name in self._data or is_secret_name(name)):
                named[value] = name
        return dict(sorted(named.items(), key=lambda item: len(item[0]), reverse=True))

    def conceal(self, text: str) -> str:
        """``text`` with each named secret value replaced by ``${NAME}`` — for what is stored (state, the state
        mirror, table data such as a quarantined row's origin), so it holds no secret yet ``reveal`` restores it
        exactly. Values of 4 characters or more are replaced wherever they occur; shorter ones where they stand
        as a whole token (see ``logs.mask``)."""
        for value, name in self._named().items():
            placeholder = "${" + name + "}"
            text = text.replace(value, placeholder) if len(value) >= _MIN_PLAIN else mask(text, [value], placeholder)
        return text

    def reveal(self, text: str) -> str:
        """The inverse of ``conceal``: each ``${NAME}`` of a secret known now back to its value."""
        if "${" not in text:
            return text
        for value, name in self._named().items():
            text = text.replace("${" + name + "}", value)
        return text

    def redact(self, text: str, replacement: str = "***") -> str:
        """``text`` with every value of ``values()`` masked where it stands as a whole token (``logs.mask``)."""
        return mask(text, self.values(), replacement)

    def weak_secrets(self) -> list[str]:
        """One line per secret that redaction protects poorly — shorter than 8 characters, or equal to another
        configured value (such as a user name, shown in errors) — naming the variable and its file, never the
        value."""
        others: dict[str, str] = {v: k for k, v in self._data.items() if v and not is_secret_name(k)}
        others.update({v: k for k, v in os.environ.items() if v and is_location_name(k) and v not in others})
        lines = []
        for name, value in sorted(self._data.items()):
            if not value or not is_secret_name(name):
                continue
            where = f" ({self.sources[name]})" if name in self.sources else ""
            if value in others:
                lines.append(f"secret {name}{where} equals {others[value]}: wherever {others[value]} is shown, "
                             f"{name} is given away — use a different value")
            elif len(value) < WEAK_SECRET_LEN:
                lines.append(f"secret {name}{where} is shorter than {WEAK_SECRET_LEN} characters: it is masked only "
                             "where it stands as a whole word — use a longer one")
        return lines

    def __repr__(self) -> str:
        return f"Secrets(tenant_id={self.tenant_id!r}, names={self.names()!r})"

    __str__ = __repr__


def _unquote(value: str, path: Path, lineno: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        while quote == '"' and end > 0 and value[end - 1] == "\\":
            end = value.find(quote, end + 1)
        rest = value[end + 1:].strip() if end > 0 else ""
        if end < 0 or (rest and not rest.startswith("#")):
            raise ConfigError(path, f"line {lineno}: unterminated or malformed quoted value",
                              fix="close the quote; put comments after it with ' #'")
        inner = value[1:end]
        if quote == '"':
            inner = inner.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return inner
    # unquoted: ' #' starts a comment
    hash_at = re.search(r"\s#", value)
    return (value[: hash_at.start()] if hash_at else value).strip()


def parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines; blank lines and ``#`` comments skipped; ``export `` prefix and quotes allowed."""
    out: dict[str, str] = {}
    text = _read_text(path)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            raise ConfigError(path, f"line {lineno}: expected KEY=value", fix=_ENV_FIX)
        out[key] = _unquote(value.strip(), path, lineno)
    return out


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _string_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _string_leaves(v)
    elif isinstance(value, str) and value:
        yield value


def parse_json_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """A JSON object: each top-level key is a variable; returns (variables, nested string values)."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"line {exc.lineno}: invalid JSON ({exc.msg.lower()})",
                          fix="write one JSON object, e.g. {\"API_KEY\": \"...\"}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, "line 1: expected a JSON object", fix="write {\"NAME\": \"value\", ...}")
    out: dict[str, str] = {}
    nested: list[str] = []
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif value is None:
            out[key] = ""
        elif isinstance(value, int | float):
            out[key] = str(value)
        else:
            out[key] = json.dumps(value, separators=(",", ":"))
            nested.extend(_string_leaves(value))
    return out, nested


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(path, "is not UTF-8 text", fix="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot be read ({exc.strerror})", fix="check its permissions") from None


def load_secrets(secrets_dir: Path | None, tenant_id: str, *, project_root: Path | None = None) -> Secrets:
    """Read ``secrets_dir/<tenant_id>/``; files in name order, a later file wins for a repeated name (except for
    a connector's own file, which wins for that connector: ``Secrets.lookup``); and the project's
    ``<project_root>/.env`` when there is one (see ``Secrets.lookup`` for the order).

    A missing folder (or no ``secrets_dir``) gives empty secrets: variables then come from the environment.
    """
    validate_tenant_id(tenant_id)
    dotenv = Path(project_root) / ".env" if project_root is not None else None
    project_env = parse_env_file(dotenv) if dotenv is not None and dotenv.is_file() else {}
    if secrets_dir is None:
        return Secrets(tenant_id=tenant_id, project_env=project_env)
    folder = Path(secrets_dir) / tenant_id
    if not folder.is_dir():
        return Secrets(tenant_id=tenant_id, project_env=project_env)
    data: dict[str, str] = {}
    sources: dict[str, Path] = {}
    by_file: dict[str, dict[str, str]] = {}
    nested: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or (path.name.startswith(".") and path.name != ".env"):
            continue
        suffix = path.suffix.lower()
        if suffix == ".env" or path.name == ".env":
            values = parse_env_file(path)
        elif suffix == ".json":
            values, inner = parse_json_file(path)
            nested.extend(inner)
        else:
            values = {path.stem: _read_text(path).strip()}
        data.update(values)
        sources.update(dict.fromkeys(values, path))
        by_file.setdefault(path.stem, {}).update(values)
    return Secrets(data, tenant_id=tenant_id, sources=sources, extra_values=nested, project_env=project_env,
                   by_file=by_file)
