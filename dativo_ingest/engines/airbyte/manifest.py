"""``airbyte.yaml``: which Airbyte connector realises each of our connectors, and its config.

The file ships in this folder; a project's own ``engines/airbyte.yaml`` is laid over it entry by entry.

An entry names the connector's PyPI ``package`` / Docker ``image`` / ``version`` / ``executable`` and a
``config`` template: the connector's own spec keys, filled from our connection (the recipe's
``connection_template`` ⊕ the job's ``source.connection``, already expanded from secrets). In a
template, a string that is exactly ``"{name}"`` takes the value of ``name`` with its type, and is left
out when that value is missing or empty; other strings are formatted; anything else is a constant.
Besides the connection's keys, ``{stream}`` is the first stream and ``{file}`` the absolute path of the
first source file. ``passthrough: true`` also copies every connection key no template uses.
The job may add raw connector keys under ``engine.options.airbyte.config``.

Before ``read`` the config is checked against the connector's ``spec``: one line naming every missing
or bad key (never a value).
"""

from __future__ import annotations

import copy
import hashlib
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dativo_ingest.config.merge import deep_merge
from dativo_ingest.engines.common.files import write_json_atomic
from dativo_ingest.engines.common.manifest import Manifest
from dativo_ingest.engines.common.manifest import load_manifest as load_engine_manifest
from dativo_ingest.errors import ConfigError
from dativo_ingest.paths import dativo_home

_WHOLE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_OPTION_KEYS = ("package", "version", "image", "executable", "prefix", "launcher", "network")


@dataclass
class ConnectorEntry:
    """One connector of ``engines/airbyte.yaml`` (after the job's ``engine.options.airbyte`` overrides)."""

    name: str
    package: str | None = None
    version: str | None = None
    image: str | None = None
    executable: str | None = None
    prefix: list[str] = field(default_factory=list)
    launcher: str | None = None
    network: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    passthrough: bool = False
    #: a config for ``test-connector`` when none is given (offline connectors only)
    test_config: dict[str, Any] | None = None
    path: Path | None = None


def load_manifest(project_root: Path | None) -> Manifest:
    """The connectors of the shipped ``airbyte.yaml`` with the project's ``engines/airbyte.yaml`` laid over it."""
    return load_engine_manifest("airbyte", "connectors", project_root)


def connector_entry(name: str, project_root: Path | None, options: dict[str, Any] | None = None,
                    *, job_path: Path | None = None) -> ConnectorEntry:
    """The manifest's entry for ``name``, with ``engine.options.airbyte`` (``options``) applied over it."""
    manifest = load_manifest(project_root)
    connectors, path = manifest.entries, manifest.origin(name)
    options = dict(options or {})
    raw = connectors.get(name)
    if raw is None and not any(options.get(k) for k in ("package", "image", "executable")):
        raise ConfigError(path, f"connector '{name}' has no entry (known: {', '.join(sorted(connectors))})",
                          field=f"connectors.{name}",
                          fix="add its package/image and config mapping, or give engine.options.airbyte.package, "
                              "image or executable in the job")
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(path, "must be a mapping", field=f"connectors.{name}",
                          fix="give package, version, image, executable and config")
    known = raw is not None
    raw = dict(raw or {})
    for key in _OPTION_KEYS:
        if options.get(key) is not None:
            raw[key] = options[key]
    if options.get("executable") and not options.get("package") and not options.get("launcher"):
        raw["launcher"] = "local"  # a path given in the job: a connector under development
    prefix = raw.get("prefix") or []
    return ConnectorEntry(
        name=name,
        package=raw.get("package"),
        version=str(raw["version"]) if raw.get("version") is not None else None,
        image=raw.get("image"),
        executable=raw.get("executable"),
        prefix=[str(p) for p in prefix] if isinstance(prefix, list) else [str(prefix)],
        launcher=raw.get("launcher"),
        network=raw.get("network"),
        config=dict(raw.get("config") or {}),
        passthrough=bool(raw.get("passthrough", not known)),  # no mapping known: the connection is the config
        test_config=raw.get("test_config"),
        path=path if known else job_path,
    )


# -- the config mapping ------------------------------------------------------------------------------------


class _Missing(KeyError):
    pass


def _render(template: Any, context: dict[str, Any], used: set[str]) -> Any:
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            try:
                rendered = _render(value, context, used)
            except _Missing:
                continue
            out[key] = rendered
        return out
    if isinstance(template, list):
        items = []
        for value in template:
            try:
                items.append(_render(value, context, used))
            except _Missing:
                continue
        return items
    if not isinstance(template, str) or "{" not in template:
        return copy.deepcopy(template)
    whole = _WHOLE.match(template)
    if whole:
        used.add(whole.group(1))
        value = context.get(whole.group(1))
        if value is None or value == "":
            raise _Missing(whole.group(1))
        return copy.deepcopy(value)
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    used.update(names)
    if any(context.get(n) in (None, "") for n in names):
        raise _Missing(names[0])
    return template.format_map(context)


def render_config(entry: ConnectorEntry, connection: dict[str, Any], *, extra: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The connector's config: the entry's template filled from ``connection`` (+ ``extra`` names)."""
    context = {**(extra or {}), **connection}
    used: set[str] = set()
    config = _render(entry.config, context, used)
    if entry.passthrough:
        for key, value in connection.items():
            if key not in used and key not in config and value not in (None, ""):
                config[key] = copy.deepcopy(value)
    return deep_merge(config, overrides or {})


# -- the spec ----------------------------------------------------------------------------------------------


def coerce_to_spec(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Strings that came from ``${VAR}`` become the integer / number / boolean the spec declares."""
    props = spec.get("properties") if isinstance(spec.get("properties"), dict) else {}
    out = dict(config)
    for key, value in config.items():
        prop = props.get(key)
        if not isinstance(prop, dict):
            continue
        declared = prop.get("type")
        types = set(declared) if isinstance(declared, list) else {declared}
        if isinstance(value, str):
            text = value.strip()
            if "integer" in types and re.fullmatch(r"-?\d+", text):
                out[key] = int(text)
            elif "number" in types and re.fullmatch(r"-?\d+(\.\d*)?([eE][-+]?\d+)?", text):
                out[key] = float(text) if any(c in text for c in ".eE") else int(text)
            elif "boolean" in types and text.lower() in ("true", "false"):
                out[key] = text.lower() == "true"
        elif isinstance(value, dict) and "object" in types:
            out[key] = coerce_to_spec(value, prop)
    return out


def spec_problems(config: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Every way ``config`` breaks the connector's spec, one short phrase each, naming keys, never values."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    try:
        validator = Draft7Validator(spec)
    except SchemaError:  # pragma: no cover - a connector's spec that is not a schema
        return []
    problems: list[str] = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        kind = error.validator
        if kind == "required":
            missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
            problems.extend(f"missing '{'.'.join(filter(None, [where, k]))}'" for k in missing)
        elif kind == "type":
            problems.append(f"'{where}' must be {_or(error.validator_value)} (got {_json_type(error.instance)})")
        elif kind in ("enum", "const"):
            allowed = error.validator_value if kind == "enum" else [error.validator_value]
            shown = ", ".join(str(a) for a in allowed[:10]) if not _secret(spec, error) else "…"
            problems.append(f"'{where}' must be one of: {shown}")
        elif kind in ("oneOf", "anyOf"):
            titles = [str(s.get("title")) for s in error.validator_value if isinstance(s, dict) and s.get("title")]
            hint = f" ({'; '.join(titles[:6])})" if titles else ""
            problems.append(f"'{where}' matches none of the allowed shapes{hint}")
        elif kind == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties") or {}))
            under = f" under '{where}'" if where else ""
            problems.append(f"unknown key(s) {', '.join(repr(k) for k in extra)}{under}")
        elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                      "minItems", "maxItems"):
            problems.append(f"'{where}' must satisfy {kind} {error.validator_value}")
        elif kind == "pattern":
            problems.append(f"'{where}' does not match the pattern {error.validator_value}")
        else:
            problems.append(f"'{where or '(config)'}' fails '{kind}'")
    return list(dict.fromkeys(problems))


def validate_config(config: dict[str, Any], spec: dict[str, Any], *, connector: str, path: Path | str | None,
                    field: str = "source.connection") -> None:
    """``ConfigError`` naming every key of ``config`` that does not match the connector's ``spec``."""
    problems = spec_problems(config, spec)
    if problems:
        raise ConfigError(path, f"the config of Airbyte connector '{connector}' does not match its spec: "
                          f"{'; '.join(problems)}", field=field,
                          fix="set the keys in the recipe's connection_template or the job's source.connection "
                              "(mapped by engines/airbyte.yaml), or raw under engine.options.airbyte.config")


def _or(value: Any) -> str:
    return " or ".join(value) if isinstance(value, list) else str(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _secret(spec: dict[str, Any], error: Any) -> bool:
    return bool(isinstance(error.schema, dict) and error.schema.get("airbyte_secret"))


def secret_values(config: Any, spec: Any) -> list[str]:
    """String values of the keys the spec marks ``airbyte_secret`` (to be redacted from every log)."""
    out: list[str] = []
    if not isinstance(config, dict) or not isinstance(spec, dict):
        return out
    props = spec.get("properties") if isinstance(spec.get("properties"), dict) else {}
    branches = [b for k in ("oneOf", "anyOf") for b in spec.get(k) or () if isinstance(b, dict)]
    for key, value in config.items():
        for schema in [props.get(key)] + [(b.get("properties") or {}).get(key) for b in branches]:
            if not isinstance(schema, dict):
                continue
            if schema.get("airbyte_secret") and isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict):
                out.extend(secret_values(value, schema))
    return out


# -- CONTROL: config updates the connector asks us to keep -------------------------------------------------


def control_path(tenant_id: str, job_name: str) -> Path:
    """Where a connector's updated config (a CONTROL message) is kept for a job."""
    return dativo_home() / "airbyte" / "control" / tenant_id / f"{job_name}.json"


def config_digest(config: dict[str, Any]) -> str:
    """A digest of a config (which config a kept update was made from)."""
    return hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()


def save_control_config(path: Path, base: dict[str, Any], updated: dict[str, Any]) -> None:
    """Keep a connector's new config (a refreshed token, say) for the next runs; private to the user."""
    write_json_atomic(path, {"base": config_digest(base), "config": updated}, private=True)


def apply_control_config(path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(config to use, whether a kept update was applied)``.

    A kept update applies only while our own config is the one it was made from: once the user
    changes theirs (a new key in secrets), theirs wins and the kept update is dropped.
    """
    if not path.is_file():
        return config, False
    try:
        kept = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        path.unlink(missing_ok=True)
        return config, False
    if kept.get("base") != config_digest(config) or not isinstance(kept.get("config"), dict):
        path.unlink(missing_ok=True)
        return config, False
    return kept["config"], True
