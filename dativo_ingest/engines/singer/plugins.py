"""Which Singer tap realises a job, with which settings and streams: ``engines/singer.yaml`` ⊕ the job's extractor.

See the header of ``engines/singer.yaml`` for the config-mapping rules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dativo_ingest.config.merge import deep_merge
from dativo_ingest.engines.common.manifest import Manifest, load_manifest
from dativo_ingest.errors import ConfigError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan

#: the registry's connector for any tap a job's ``extractor:`` block names (no entry in singer.yaml needed)
GENERIC_TAP = "singer_tap"
CAPABILITIES = frozenset({"catalog", "properties", "discover", "state", "about", "activate-version", "batch",
                          "stream-maps", "schema-flattening", "structured-logging", "log-based", "test"})


@dataclass
class TapPlugin:
    """One tap, as the engine needs it."""

    name: str
    executable: str
    pip_url: str | None = None
    #: None: not declared, ask the tap (``--about``)
    capabilities: frozenset[str] | None = None
    streams: dict[str, Any] = field(default_factory=dict)
    config_map: dict[str, Any] = field(default_factory=dict)
    #: the job's extractor ``config``, merged over the mapped settings
    config_override: dict[str, Any] = field(default_factory=dict)
    select: list[str] | None = None
    metadata: dict[str, dict[str, Any]] | None = None
    #: the file that defined it (for error messages)
    origin: Path | None = None


@dataclass(frozen=True)
class TapStream:
    """One of our streams and the tap stream behind it."""

    stream: str
    tap_stream_id: str
    replication_method: str | None = None
    replication_key: str | None = None


def load_plugins(project_root: Path) -> Manifest:
    """The taps of the shipped ``singer.yaml`` with the project's ``engines/singer.yaml`` laid over it."""
    return load_manifest("singer", "taps", project_root)


def parse_capabilities(value: Any, path: Path | None, where: str) -> frozenset[str] | None:
    """A declared capabilities list (None: not declared, ask the tap), or a ``ConfigError`` naming ``where``."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list", field=where, fix="e.g. [catalog, discover, state]")
    unknown = sorted({str(v) for v in value} - CAPABILITIES)
    if unknown:
        raise ConfigError(path, f"unknown capability {', '.join(unknown)}", field=where,
                          fix=f"use some of: {', '.join(sorted(CAPABILITIES))}")
    return frozenset(str(v) for v in value)


def resolve_tap(plan: JobPlan) -> TapPlugin:
    """The tap of the job: its extractor block over the ``engines/singer.yaml`` entry of its connector."""
    manifest = load_plugins(plan.project_root)
    taps, path = manifest.entries, manifest.origin(plan.source_connector)
    extractor = plan.job.extractor
    entry = taps.get(plan.source_connector)
    if extractor is not None and (entry is None or entry.get("name") != extractor.name):
        # another tap than the connector's: only an entry of that very tap applies
        entry = next((t for t in taps.values() if t.get("name") == extractor.name), None)
    if entry is None and extractor is None:
        raise ConfigError(plan.job_path, f"no Singer tap for connector '{plan.source_connector}' in {path} "
                          f"(taps: {', '.join(sorted(taps)) or 'none'})", field="source_connector",
                          fix="add it to engines/singer.yaml, paste a Meltano extractor block under 'extractor:', "
                              "or use engine: native")
    entry = dict(entry or {})
    where = f"taps.{plan.source_connector}"
    plugin = TapPlugin(
        name=str(entry.get("name") or plan.source_connector),
        executable=str(entry.get("executable") or entry.get("name") or ""),
        pip_url=entry.get("pip_url"),
        capabilities=parse_capabilities(entry.get("capabilities"), path, f"{where}.capabilities"),
        streams=dict(entry.get("streams") or {}),
        config_map=dict(entry.get("config") or {}),
        origin=path,
    )
    if extractor is not None:
        plugin.name = extractor.name
        if extractor.pip_url:
            plugin.pip_url = extractor.pip_url
        plugin.executable = extractor.executable or (plugin.executable if entry else extractor.name)
        if extractor.capabilities is not None:
            plugin.capabilities = parse_capabilities(extractor.capabilities, plan.job_path, "extractor.capabilities")
        plugin.config_override = dict(extractor.config)
        plugin.select = list(extractor.select) if extractor.select is not None else None
        plugin.metadata = dict(extractor.metadata) if extractor.metadata is not None else None
    if not plugin.executable:
        raise ConfigError(plan.job_path, f"tap '{plugin.name}' has no executable", field="extractor.executable",
                          fix="name the executable the package installs, e.g. tap-postgres")
    return plugin


# -- settings ----------------------------------------------------------------------------------------------


@dataclass
class _Context:
    plan: JobPlan
    streams_from: str | None
    default_stream: str


def _lookup(path: str, scopes: list[dict[str, Any]]) -> Any:
    for scope in scopes:
        current: Any = scope
        for part in path.split("."):
            if isinstance(current, dict) and part in current:
                current = current[part]
            else:
                current = None
                break
        if current is not None:
            return current
    return None


def _element_stream(element: dict[str, Any], ctx: _Context) -> str:
    if ctx.streams_from == "tables":
        return str(element.get("object") or element.get("name") or ctx.default_stream)
    return str(element.get("object") or ctx.default_stream)


def _is_rule(value: Any) -> bool:
    return isinstance(value, dict) and bool({"from", "const", "each"} & set(value))


_TYPES = {"integer": int, "number": float, "string": str}


def _typed(value: Any, kind: str | None, where: str, ctx: _Context) -> Any:
    if kind is None or value is None:
        return value
    try:
        if kind == "boolean":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
        return _TYPES[kind](value)
    except KeyError:
        raise ConfigError(None, f"unknown type '{kind}' in the tap's config mapping", field=where,
                          fix="use integer, number, string or boolean") from None
    except (TypeError, ValueError):
        raise ConfigError(ctx.plan.job_path, f"'{where}' must be {kind} for the Singer tap", field=f"source.{where}",
                          fix=f"give a {kind} value") from None


def _transform(value: Any, name: str | None, ctx: _Context) -> Any:
    if name is None or value is None:
        return value
    text = str(value)
    if name == "schema":
        return text.rsplit(".", 1)[0] if "." in text else None
    if name == "table":
        return text.rsplit(".", 1)[-1]
    if name == "path":
        path = Path(os.path.expanduser(text))
        return str(path if path.is_absolute() else ctx.plan.project_root / path)
    raise ConfigError(None, f"unknown transform '{name}' in the tap's config mapping", field="transform",
                      fix="use schema, table or path")


def _evaluate(rule: Any, scopes: list[dict[str, Any]], ctx: _Context, where: str) -> Any:
    if not isinstance(rule, dict):
        return rule
    if not _is_rule(rule):
        out = {k: _evaluate(v, scopes, ctx, f"{where}.{k}") for k, v in rule.items()}
        return {k: v for k, v in out.items() if v is not None} or None
    if "const" in rule:
        return rule["const"]
    if "each" in rule:
        items = _lookup(str(rule["each"]), scopes[-1:])
        if items is None:
            return rule.get("default")
        items = items if isinstance(items, list) else [items]
        values = []
        for item in items:
            element = item if isinstance(item, dict) else {"name": item, "path": item}
            value = _evaluate(rule.get("item"), [element, *scopes], ctx, where)
            if value is not None and not (rule.get("unique") and value in values):
                values.append(value)
        return values
    source = str(rule["from"])
    if source == "@stream":
        value: Any = _element_stream(scopes[0], ctx)
    elif source == "@primary_key":
        value = list(ctx.plan.asset.primary_key) or None
    else:
        value = _lookup(source, scopes)
    value = _transform(value, rule.get("transform"), ctx)
    if value is None or value == "" and "default" in rule:
        value = rule.get("default")
    return _typed(value, rule.get("type"), source, ctx)


def tap_config(plan: JobPlan, plugin: TapPlugin) -> dict[str, Any]:
    """The tap's settings: the mapping over the job's source, then the extractor's ``config``."""
    ctx = _Context(plan, plugin.streams.get("from"), plan.default_stream)
    source = plan.source.as_mapping()  # the mapping's rules look values up by dotted path
    mapped = {}
    for key, rule in plugin.config_map.items():
        value = _evaluate(rule, [source], ctx, str(key))
        if value is not None:
            mapped[str(key)] = value
    return deep_merge(mapped, plugin.config_override)


# -- streams -----------------------------------------------------------------------------------------------


def _replication(plan: JobPlan, cursor_field: str | None) -> tuple[str | None, str | None]:
    if plan.read.full_refresh:
        return "FULL_TABLE", None
    if cursor_field:
        return "INCREMENTAL", cursor_field
    return None, None


def tap_streams(plan: JobPlan, plugin: TapPlugin) -> list[TapStream] | None:
    """Our streams and their tap streams, from the job (None: the extractor's ``select`` decides)."""
    if plugin.select is not None:
        return None
    kind = plugin.streams.get("from")
    template = str(plugin.streams.get("stream_id") or "{stream}")
    default_cursor = plan.read.default_cursor
    out: list[TapStream] = []
    if kind == "tables":
        if plan.source.query:
            raise ConfigError(plan.job_path, f"the Singer tap {plugin.name} reads tables, not queries",
                              field="source.query", fix="use source.tables, or engine: native for a custom query")
        from dativo_ingest.engines.native.sql.common import resolve_tables

        try:
            tables = resolve_tables(plan.source.tables or [], None, default_stream=plan.default_stream,
                                    read=plan.read)
        except ConfigError as exc:
            raise ConfigError(plan.job_path, exc.message) from None
        schema_from = plugin.streams.get("default_schema_from")
        schema_default = str((_lookup(str(schema_from), [plan.source.as_mapping()]) if schema_from else None)
                             or plugin.streams.get("default_schema") or "public")
        for table in tables:
            name = str(table.name)
            schema, _, bare = name.rpartition(".")
            sid = template.format(schema=schema or schema_default, table=bare, stream=table.stream)
            method, key = _replication(plan, table.cursor_field)
            out.append(TapStream(table.stream, sid, method, key))
        return out
    if kind == "files":
        entries = [f.model_dump(exclude_none=True) for f in plan.source.file_entries()]
        if not entries:
            raise ConfigError(plan.job_path, "no files to read", field="source.files",
                              fix="add source.files: [{path: data/x.csv, object: x}]")
        ctx = _Context(plan, "files", plan.default_stream)
        seen: set[str] = set()
        for entry in entries:
            stream = _element_stream(entry, ctx)
            if stream in seen:
                continue
            seen.add(stream)
            method, key = _replication(plan, None)
            out.append(TapStream(stream, template.format(stream=stream, schema="", table=stream), method, key))
        return out
    stream = plan.default_stream
    method, key = _replication(plan, default_cursor)
    return [TapStream(stream, template.format(stream=stream, schema="", table=stream), method, key)]
