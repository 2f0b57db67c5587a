"""Canonical ODCS v3 data contracts ⇄ the flat dativo asset dialect: one ``AssetDefinition`` from either.

- **flat** (the seed's files): ``schema: [{name, type, required, primary_key, …}]`` with ``source_type``,
  ``object`` and ``target`` at the top level.
- **canonical** (Bitol ODCS v3): ``schema: [{name, properties: [{name, logicalType, physicalType, required,
  primaryKey, primaryKeyPosition, …}], quality: […]}]``, dativo's keys under ``customProperties``.

A canonical file is validated with the official model (PyPI ``open-data-contract-standard``: its JSON Schema,
then its pydantic model) before it is translated; whatever that model rejects is one line naming the file, the
field and the fix. ``to_canonical`` writes what the official model accepts, and loading that back gives the same
``AssetDefinition`` as the flat file. The type mapping (``logicalType`` + ``physicalType`` ⇄ our stage types)
is documented in ``docs/odcs.md``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from dativo_ingest.config.models import (
    FIELD_TYPE_PATTERN,
    AssetDefinition,
    AssetDescription,
    SchemaField,
    is_canonical,
    render_loc,
    validation_problems,
)
from dativo_ingest.errors import ConfigError
from dativo_ingest.stage.types import LogicalType, parse_type

#: the ODCS version ``to_canonical`` writes: the one the official model package describes
EXPORT_API_VERSION = "v3.2.0"

#: customProperties dativo reads (contract or schema-object level) -> the flat asset's key
DATIVO_PROPERTIES: dict[str, str] = {
    "sourceType": "source_type", "source_type": "source_type",
    "object": "object",
    "target": "target",
    "team": "team",
    "compliance": "compliance",
    "dataQuality": "data_quality", "data_quality": "data_quality",
    "changeManagement": "change_management", "change_management": "change_management",
}
#: the flat key -> the customProperty name written on export
_EXPORT_NAMES = {"source_type": "sourceType", "object": "object", "target": "target", "team": "team",
                 "compliance": "compliance", "data_quality": "dataQuality", "change_management": "changeManagement"}
#: plain ODCS keys shared by both forms, copied as they are
_SHARED_TOP = ("id", "name", "version", "status", "domain", "dataProduct", "tenant", "tags")
#: ODCS top-level keys dativo does not interpret: kept on the asset and written back unchanged
_PASS_TOP = ("servers", "support", "price", "roles", "slaDefaultElement", "slaProperties", "authoritativeDefinitions",
             "context", "contractCreatedTs")
_TEAM_KEYS = frozenset({"id", "name", "description", "members", "tags", "customProperties", "authoritativeDefinitions"})
_MEMBER_KEYS = frozenset({"id", "username", "name", "description", "role", "dateIn", "dateOut", "replacedByUsername",
                          "tags", "customProperties", "authoritativeDefinitions"})
#: ODCS property keys that have a flat counterpart (the rest is kept on the field under its ODCS name)
_TYPE_KEYS = ("logicalType", "physicalType", "logicalTypeOptions")
_PROPERTY_KEYS = frozenset({
    "id", "name", "physicalType", "physicalName", "description", "businessName", "deprecated", "synonyms",
    "authoritativeDefinitions", "tags", "customProperties", "primaryKey", "primaryKeyPosition", "logicalType",
    "logicalTypeOptions", "semanticType", "required", "unique", "partitioned", "partitionKeyPosition",
    "classification", "encryptedName", "transformSourceObjects", "transformLogic", "transformDescription",
    "examples", "enum", "criticalDataElement", "relationships", "quality", "properties", "items", "map"})
#: the flat asset's extra key holding the schema object's own ODCS keys (physicalName, description, …)
SCHEMA_OBJECT_KEY = "schema_object"


# -- which form is it --------------------------------------------------------------------------------------


def canonical_names(raw: dict[str, Any]) -> dict[str, Any]:
    """Where a canonical contract holds names that become identifiers or paths (field path -> value)."""
    names: dict[str, Any] = {key: raw.get(key) for key in ("name", "domain", "dataProduct")}
    for i, entry in enumerate(raw.get("customProperties") or []):
        if isinstance(entry, dict) and entry.get("property") == "object":
            names[f"customProperties[{i}].value"] = entry.get("value")
    for i, obj in enumerate(raw.get("schema") or []):
        if not isinstance(obj, dict):
            continue
        names[f"schema[{i}].name"] = obj.get("name")
        names[f"schema[{i}].physicalName"] = obj.get("physicalName")
        for j, entry in enumerate(obj.get("customProperties") or []):
            if isinstance(entry, dict) and entry.get("property") == "object":
                names[f"schema[{i}].customProperties[{j}].value"] = entry.get("value")
        for j, prop in enumerate(obj.get("properties") or []):
            if isinstance(prop, dict):
                names[f"schema[{i}].properties[{j}].name"] = prop.get("name")
    return names


# -- the official model -------------------------------------------------------------------------------------


@cache
def _official_schema_validator() -> Any:
    from importlib import resources

    import jsonschema

    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


_RANK = {"oneOf": 1, "anyOf": 1, "allOf": 1, "if": 1, "unevaluatedProperties": 2, "additionalProperties": 2}
_QUOTED = re.compile(r"'([^']+)'")


def _path_key(path: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)


def _error_path(err: Any) -> list[Any]:
    """Where an error points: a key it names (unknown, missing) counts as part of its path."""
    path = list(err.absolute_path)
    if err.validator in ("unevaluatedProperties", "additionalProperties", "required"):
        path += _QUOTED.findall(err.message)[:1]
    return path


def _schema_problem(err: Any) -> tuple[str | None, str, str]:
    """A jsonschema error as ``(field, problem, fix)``, in the terms of the contract file."""
    path = list(err.absolute_path)
    field = render_loc(path) or None
    kind = err.validator
    shown = err.instance if isinstance(err.instance, str | int | float | bool) else None
    if kind in ("unevaluatedProperties", "additionalProperties"):
        keys = _QUOTED.findall(err.message)
        key = keys[0] if keys else "?"
        return (render_loc([*path, key]), "unknown key in ODCS v3",
                f"remove it, or keep it as customProperties: [{{property: {key}, value: …}}]")
    if kind == "required":
        keys = _QUOTED.findall(err.message)
        key = keys[0] if keys else "?"
        if key == "map" and isinstance(err.instance, dict) and "logicalType" not in err.instance:
            # the official schema reads a property without logicalType as a map (its if/then has no 'required')
            return (render_loc([*path, "logicalType"]), "is required by the official ODCS schema",
                    "add logicalType: string, integer, number, boolean, date, time, timestamp, object or array")
        return render_loc([*path, key]), "is required by ODCS v3", f"add '{key}'"
    if kind == "enum":
        allowed = ", ".join(str(v) for v in err.validator_value)
        return field, f"'{shown}' is not allowed" if shown is not None else "has a value that is not allowed", \
            f"use one of: {allowed}"
    if kind == "type":
        return field, f"must be of type {err.validator_value}", "see docs/odcs.md for the shape of this key"
    if kind in ("oneOf", "anyOf") and "quality" in [str(p) for p in path]:
        return field, "a quality rule needs exactly one operator", \
            "give one of mustBe, mustNotBe, mustBeGreaterThan, mustBeGreaterOrEqualTo, mustBeLessThan, " \
            "mustBeLessOrEqualTo, mustBeBetween, mustNotBeBetween"
    return field, err.message.splitlines()[0][:200], "see the ODCS v3 reference (docs/odcs.md)"


def official_problems(data: Any) -> list[tuple[str | None, str, str | None]]:
    """What the official ODCS model (its JSON Schema, then its pydantic model) rejects in ``data``."""
    errors = sorted(_official_schema_validator().iter_errors(data),
                    key=lambda e: (_path_key(_error_path(e)), _RANK.get(e.validator, 0)))
    if errors:
        problems: list[tuple[str | None, str, str | None]] = []
        for err in errors:
            problem = _schema_problem(err)
            if problem not in problems:
                problems.append(problem)
        return problems
    from open_data_contract_standard.model import OpenDataContractStandard

    try:
        OpenDataContractStandard.model_validate(data)
    except ValidationError as exc:
        return validation_problems(exc, data, OpenDataContractStandard)
    return []


def validate_odcs(data: Any, path: str | Path | None) -> None:
    """Raise a one-line ``ConfigError`` (all problems in ``.problems``) if the official model rejects ``data``."""
    problems = official_problems(data)
    if problems:
        _raise(path, problems, prefix="not a valid ODCS v3 contract: ")


def _raise(path: str | Path | None, problems: list[tuple[str | None, str, str | None]], prefix: str = "") -> None:
    errors = [ConfigError(path, prefix + message, field=field, fix=fix) for field, message, fix in problems]
    first = errors[0]
    first.problems = [str(e) for e in errors]  # type: ignore[attr-defined]
    raise first


# -- types ---------------------------------------------------------------------------------------------------

_OWN_TYPE = re.compile(FIELD_TYPE_PATTERN)

#: physical type spellings of common databases and formats -> our type (tried after our own names)
_SQL_TYPES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), t) for p, t in (
    (r"(n)?(var)?char(acter)?( varying)?(\s*\(\s*\d+\s*\))?|text|tinytext|mediumtext|longtext|clob|citext"
     r"|string\(\d+\)|nvarchar\(max\)|varchar\(max\)", "string"),
    (r"smallint|tinyint|mediumint|int2|int4|serial|smallserial|int32|int16|int8_t|short|byte", "integer"),
    (r"bigint|int8|bigserial|int64", "long"),
    (r"real|float4|float32", "float"),
    (r"float8|double precision|float64", "double"),
    (r"numeric|bignumeric", "decimal"),
    (r"boolean|bit(\(1\))?", "boolean"),
    (r"time without time zone|time\s*\(\d\)", "time"),
    (r"timestamp without time zone|timestamp\s*\(\d\)|timestamp_ntz(\(\d\))?|datetime2(\(\d\))?|smalldatetime",
     "timestamp"),
    (r"timestamp with time zone|timestamp\s*\(\d\) with time zone|timestamp_ltz(\(\d\))?|timestamp_tz\(\d\)"
     r"|datetimeoffset(\(\d\))?", "timestamptz"),
    (r"jsonb|variant|super|object|struct<.*>|map<.*>|struct|map|record", "json"),
    (r"bytea|blob|tinyblob|mediumblob|longblob|binary\s*\(\s*\d+\s*\)|varbinary(\s*\(\s*(\d+|max)\s*\))?|bytes"
     r"|image", "binary"),
    (r"uniqueidentifier", "uuid"),
    (r"array|.+\[\]|list<.*>", "json"),
))
_SQL_DECIMAL = re.compile(r"(?:numeric|decimal|number|bignumeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")

#: the logical types (ODCS) a stored type may be described with; ODCS v3.0 wrote timestamps as ``date``
_LOGICAL_FAMILIES: dict[str, frozenset[str]] = {
    "VARCHAR": frozenset({"string"}),
    "JSON": frozenset({"object", "array", "map", "vector", "string"}),
    "BLOB": frozenset({"string"}),
    "BIGINT": frozenset({"integer", "number"}),
    "FLOAT": frozenset({"number"}),
    "DOUBLE": frozenset({"number"}),
    "DECIMAL": frozenset({"number", "integer"}),
    "BOOLEAN": frozenset({"boolean"}),
    "DATE": frozenset({"date"}),
    "TIME": frozenset({"time", "date"}),
    "TIMESTAMP": frozenset({"timestamp", "date"}),
    "TIMESTAMPTZ": frozenset({"timestamp", "date"}),
}


def _storage(t: LogicalType) -> str:
    return t.duckdb.split("(", 1)[0]


def type_from_physical(physical: str) -> str | None:
    """Our type for an ODCS ``physicalType``: our own names as written, else common SQL spellings; None if unknown."""
    text = physical.strip()
    if _OWN_TYPE.match(text):
        return text
    key = re.sub(r"\s+", " ", text.lower())
    m = _SQL_DECIMAL.fullmatch(key)
    if m:
        return f"decimal({m.group(1)},{m.group(2) or 0})"
    for pattern, ours in _SQL_TYPES:
        if pattern.fullmatch(key):
            return ours
    return None


def type_from_logical(logical: str, options: dict[str, Any]) -> str:
    """Our type for an ODCS ``logicalType`` alone (no usable ``physicalType``), honouring ``logicalTypeOptions``."""
    fmt = str(options.get("format") or "").lower()
    if logical == "string":
        return {"uuid": "uuid", "binary": "binary"}.get(fmt, "string")
    if logical == "integer":
        return {"u64": "decimal(20,0)", "i128": "decimal(38,0)", "u128": "decimal(38,0)"}.get(fmt, "long")
    if logical == "number":
        return "float" if fmt == "f32" else "double"
    if logical == "timestamp":
        return "timestamptz" if options.get("timezone") is True else "timestamp"
    if logical in ("boolean", "date", "time"):
        return logical
    return "json"  # object, array, map, vector


def odcs_type(type_text: str) -> dict[str, Any]:
    """``logicalType``, ``physicalType`` (our type as written) and ``logicalTypeOptions`` of one of our types."""
    t = parse_type(type_text)
    storage = _storage(t)
    out: dict[str, Any] = {}
    if storage == "JSON":
        out["logicalType"] = "array" if t.name.startswith("array<") else "object"
    elif storage == "VARCHAR":
        out["logicalType"] = "string"
        if t.name == "uuid":
            out["logicalTypeOptions"] = {"format": "uuid"}
    elif storage == "BLOB":
        out["logicalType"] = "string"
        out["logicalTypeOptions"] = {"format": "binary"}
    elif storage == "BIGINT":
        out["logicalType"] = "integer"
    elif storage in ("FLOAT", "DOUBLE", "DECIMAL"):
        out["logicalType"] = "number"
    elif storage in ("TIMESTAMP", "TIMESTAMPTZ"):
        out["logicalType"] = "timestamp"
        out["logicalTypeOptions"] = {"timezone": storage == "TIMESTAMPTZ"}
    else:
        out["logicalType"] = storage.lower()  # boolean, date, time
    out["physicalType"] = type_text.strip()
    return {k: out[k] for k in _TYPE_KEYS if k in out}


def field_type(prop: dict[str, Any], where: str, path: str | Path | None) -> str:
    """Our type for one ODCS property: its ``physicalType`` when we know it, checked against its ``logicalType``."""
    logical = prop.get("logicalType")
    physical = prop.get("physicalType")
    options = prop.get("logicalTypeOptions") if isinstance(prop.get("logicalTypeOptions"), dict) else {}
    chosen = type_from_physical(physical) if isinstance(physical, str) else None
    if chosen is None:
        if logical is None:
            raise ConfigError(path, f"has no type: physicalType '{physical}' is not one dativo knows" if physical
                              else "has no type", field=where,
                              fix="add a logicalType (string, integer, number, boolean, date, time, timestamp, object, "
                                  "array) or a physicalType such as bigint, decimal(12,2), timestamptz, varchar")
        return type_from_logical(str(logical), options)
    storage = _storage(parse_type(chosen))
    if logical is not None and logical not in _LOGICAL_FAMILIES[storage]:
        raise ConfigError(path, f"logicalType '{logical}' contradicts physicalType '{physical}'",
                          field=f"{where}.logicalType",
                          fix=f"make them agree: physicalType '{physical}' is "
                              f"{' or '.join(sorted(_LOGICAL_FAMILIES[storage]))}")
    if storage in ("TIMESTAMP", "TIMESTAMPTZ") and isinstance(options.get("timezone"), bool):
        if options["timezone"] and storage == "TIMESTAMP":
            return "timestamptz"  # a zone is declared: keep it (stored in UTC)
        if not options["timezone"] and storage == "TIMESTAMPTZ":
            raise ConfigError(path, f"logicalTypeOptions.timezone false contradicts physicalType '{physical}'",
                              field=f"{where}.logicalTypeOptions.timezone",
                              fix="set timezone: true, or use a physicalType without a time zone (timestamp)")
    return chosen


# -- canonical -> flat --------------------------------------------------------------------------------------


def _custom_properties(value: Any, where: str, path: str | Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, entry in enumerate(value or []):
        name = entry.get("property")
        if name in out:
            raise ConfigError(path, f"custom property '{name}' is given twice", field=f"{where}[{i}]",
                              fix="keep one of them")
        out[name] = entry.get("value")
    return out


def _dativo_keys(custom: dict[str, Any], where: str, path: str | Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split custom properties into dativo's keys (flat names) and the others."""
    ours: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for name, value in custom.items():
        key = DATIVO_PROPERTIES.get(name)
        if key is None:
            others[name] = value
        elif key in ours:
            raise ConfigError(path, f"'{name}' repeats another spelling of {key}", field=f"{where}.{name}",
                              fix=f"keep only {_EXPORT_NAMES[key]}")
        else:
            ours[key] = value
    return ours, others


def _reserved(names: Sequence[str], model: type[BaseModel]) -> set[str]:
    keys = set(names)
    for name, info in model.model_fields.items():
        keys |= {name, info.alias or name}
    return keys


def _flat_field(prop: dict[str, Any], where: str, path: str | Path | None) -> dict[str, Any]:
    field: dict[str, Any] = {"name": prop.get("name"), "type": field_type(prop, where, path)}
    derived = odcs_type(field["type"])
    for key in _TYPE_KEYS:  # what the type alone would not say again, e.g. physicalType: GEOGRAPHY
        if key in prop and prop[key] != derived.get(key):
            field[key] = prop[key]
    simple = {"required": "required", "unique": "unique", "primaryKey": "primary_key",
              "classification": "classification", "description": "description", "examples": "examples",
              "quality": "quality"}
    for odcs_key, flat_key in simple.items():
        if prop.get(odcs_key) is not None:
            field[flat_key] = prop[odcs_key]
    position = prop.get("primaryKeyPosition")
    if prop.get("primaryKey") and isinstance(position, int) and position >= 1:
        field["primary_key_position"] = position
    for key, value in prop.items():
        if key not in simple and key not in _TYPE_KEYS and key not in ("name", "primaryKeyPosition",
                                                                       "customProperties"):
            field[key] = value
    reserved = _reserved(list(field), SchemaField)
    for name, value in _custom_properties(prop.get("customProperties"), f"{where}.customProperties", path).items():
        if name in reserved:
            raise ConfigError(path, f"custom property '{name}' clashes with a dativo field key",
                              field=f"{where}.customProperties", fix="rename the custom property")
        field[name] = value
    return field


def _normalise_key_positions(fields: list[dict[str, Any]]) -> None:
    """Positions that only repeat the schema order are dropped: the flat form says the same without them."""
    keyed = [f for f in fields if f.get("primary_key")]
    positions = [f.get("primary_key_position") for f in keyed]
    if positions == list(range(1, len(keyed) + 1)):
        for f in keyed:
            f.pop("primary_key_position", None)


def _object_names(obj: dict[str, Any], custom: dict[str, Any]) -> list[str]:
    names = [custom.get("object"), obj.get("physicalName"), obj.get("name")]
    return [str(n) for n in dict.fromkeys(names) if n]


def _pick_object(raw: dict[str, Any], path: str | Path | None, objects: Sequence[str],
                 asset: str | None) -> int:
    """The schema object a job reads: by the job's objects (``source.objects`` …), else by the job's asset name."""
    schema = raw["schema"]
    if len(schema) == 1:
        return 0
    names = [_object_names(obj, _custom_properties(obj.get("customProperties"), "", path)) for obj in schema]
    listing = ", ".join(n[0] for n in names if n)
    wanted = list(dict.fromkeys(objects))
    if len(wanted) > 1:
        raise ConfigError(path, f"has {len(schema)} schema objects, and the job reads several objects "
                          f"({', '.join(wanted)})", field="schema",
                          fix="give each object its own job (one asset per table)")
    candidates = wanted or ([asset] if asset else [])
    for want in candidates:
        short = want.rsplit(".", 1)[-1]
        for i, n in enumerate(names):
            if want in n or short in n:
                return i
    if candidates:
        raise ConfigError(path, f"has no schema object '{candidates[0]}' (objects: {listing})", field="schema",
                          fix="name one of them in the job's source.objects or asset (asset export: --object)")
    raise ConfigError(path, f"has {len(schema)} schema objects ({listing}); pick one", field="schema",
                      fix="set source.objects: [<object>] or asset: <object> in the job (asset export: --object)")


def _flat_team(value: Any) -> bool:
    """Is ``team`` in ODCS shape (a Team object or a list of members)? Else it is dativo's own."""
    if isinstance(value, list):
        return all(isinstance(m, dict) and set(m) <= _MEMBER_KEYS for m in value)
    return isinstance(value, dict) and set(value) <= _TEAM_KEYS


def flat_from_canonical(raw: dict[str, Any], path: str | Path | None, *, objects: Sequence[str] = (),
                        asset: str | None = None) -> tuple[dict[str, Any], int]:
    """The flat asset (a dict) of one schema object of a canonical contract, and that object's index."""
    validate_odcs(raw, path)
    index = _pick_object(raw, path, objects, asset)
    obj = raw["schema"][index]
    where = f"schema[{index}]"
    top_custom = _custom_properties(raw.get("customProperties"), "customProperties", path)
    obj_custom = _custom_properties(obj.get("customProperties"), f"{where}.customProperties", path)
    top_ours, top_others = _dativo_keys(top_custom, "customProperties", path)
    obj_ours, obj_others = _dativo_keys(obj_custom, f"{where}.customProperties", path)

    flat: dict[str, Any] = {k: raw[k] for k in ("apiVersion", "kind", *_SHARED_TOP) if raw.get(k) is not None}
    if len(raw["schema"]) > 1 or not flat.get("name"):
        flat["name"] = obj.get("name")
    if isinstance(raw.get("description"), dict):
        flat["description"] = raw["description"]
    for key in _PASS_TOP:
        if key in raw:
            flat[key] = raw[key]
    if "team" in raw:
        if "team" in top_ours or "team" in obj_ours:
            raise ConfigError(path, "team is given both as ODCS team and as a custom property", field="team",
                              fix="keep one of them")
        flat["team"] = raw["team"]
    flat.update(top_ours)
    flat.update(obj_ours)
    if "object" not in flat:
        flat["object"] = _object_names(obj, obj_custom)[0]
    reserved = _reserved([*flat, *_PASS_TOP], AssetDefinition)
    for name, value in {**top_others, **obj_others}.items():
        if name in reserved:
            raise ConfigError(path, f"custom property '{name}' clashes with a dativo asset key",
                              field="customProperties", fix="rename the custom property")
        flat[name] = value

    meta = {k: v for k, v in obj.items() if k not in ("name", "properties", "quality", "customProperties")
            and not (k == "logicalType" and v == "object")}
    if obj.get("name") != flat["object"]:
        meta["name"] = obj.get("name")
    if meta:
        flat[SCHEMA_OBJECT_KEY] = meta
    if obj.get("quality"):
        flat["quality"] = obj["quality"]
    fields = [_flat_field(p, f"{where}.properties[{i}]", path) for i, p in enumerate(obj.get("properties") or [])]
    _normalise_key_positions(fields)
    flat["schema"] = fields
    return flat, index


_LOCATED = re.compile(r"^([A-Za-z_]+(?:\[\d+\])?(?:\.[A-Za-z_]+)*): (.+)$")


def _canonical_field(flat_field: str | None, index: int) -> str | None:
    """A field path of the flat form, said in the terms of the canonical file."""
    if flat_field is None:
        return None
    for flat_key, custom in _EXPORT_NAMES.items():
        if flat_field == flat_key or flat_field.startswith(flat_key + ".") or flat_field.startswith(flat_key + "["):
            return "customProperties." + custom + flat_field[len(flat_key):]
    if flat_field.startswith("schema"):
        return f"schema[{index}].properties" + flat_field[len("schema"):]
    if flat_field.startswith("quality"):
        return f"schema[{index}].{flat_field}"
    return flat_field


def asset_from_canonical(raw: dict[str, Any], path: str | Path | None, *, objects: Sequence[str] = (),
                         asset: str | None = None) -> AssetDefinition:
    """Load one schema object of a canonical ODCS contract as the ``AssetDefinition`` the flat form would give."""
    flat, index = flat_from_canonical(raw, path, objects=objects, asset=asset)
    try:
        return AssetDefinition.model_validate(flat)
    except ValidationError as exc:
        problems = []
        several = len(raw["schema"]) > 1
        for field, message, fix in validation_problems(exc, flat, AssetDefinition):
            located = _LOCATED.match(message) if field is None else None
            if located:  # a whole-asset check names the flat field in its message: say it in canonical terms
                field, message = located.group(1), located.group(2)
            where = f"schema[{index}].name" if field == "name" and several else _canonical_field(field, index)
            problems.append((where, message, fix))
        _raise(path, problems)
        raise  # unreachable: _raise always raises


# -- flat -> canonical --------------------------------------------------------------------------------------


def _custom_list(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"property": k, "value": v} for k, v in values.items()]


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_unset=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _canonical_property(f: SchemaField, key_position: int | None, where: str, path: str | Path | None
                        ) -> dict[str, Any]:
    extra = dict(f.model_extra or {})
    prop: dict[str, Any] = {"name": f.name, **odcs_type(f.type)}
    for key in _TYPE_KEYS:
        if key in extra:
            prop[key] = extra.pop(key)
    if parse_type(field_type(prop, where, path)).duckdb != parse_type(f.type).duckdb:
        raise ConfigError(path, f"{', '.join(k + ' ' + repr(prop[k]) for k in _TYPE_KEYS if k in prop)} "
                          f"contradicts type '{f.type}'", field=where,
                          fix="remove the ODCS type keys from the field, or make them agree with its type")
    prop = {k: prop[k] for k in ("name", *_TYPE_KEYS) if k in prop}
    if f.primary_key:
        prop["primaryKey"] = True
        prop["primaryKeyPosition"] = key_position
    if f.required:
        prop["required"] = True
    if f.unique:
        prop["unique"] = True
    for key in ("classification", "description", "examples"):
        if getattr(f, key) is not None:
            prop[key] = getattr(f, key)
    if f.quality:
        prop["quality"] = _dump(f.quality)
    custom = list(extra.pop("customProperties", None) or [])
    for key, value in extra.items():
        if key in _PROPERTY_KEYS:
            prop[key] = value
        else:
            custom.append({"property": key, "value": value})
    if custom:
        prop["customProperties"] = custom
    return prop


def to_canonical(asset: AssetDefinition, path: str | Path | None = None) -> dict[str, Any]:
    """The canonical ODCS v3 contract of ``asset`` (one schema object), checked against the official model.

    ``id`` defaults to a UUID derived from the asset's name (stable across exports); ``version`` is required.
    """
    if not asset.version:
        raise ConfigError(path, "has no version, which ODCS requires", field="version", fix='add version: "1.0"')
    extra = dict(asset.model_extra or {})
    out: dict[str, Any] = {"apiVersion": EXPORT_API_VERSION, "kind": "DataContract",
                           "id": asset.id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"dativo-ingest:asset:{asset.name}"))}
    for key in _SHARED_TOP[1:]:
        if getattr(asset, key) is not None:
            out[key] = getattr(asset, key)
    if isinstance(asset.description, AssetDescription):
        out["description"] = asset.description.model_dump(exclude_none=True)
    elif asset.description is not None:
        out["description"] = {"purpose": asset.description}

    custom = list(extra.pop("customProperties", None) or [])
    ours: dict[str, Any] = {}
    if asset.source_type is not None:
        ours["sourceType"] = asset.source_type
    if asset.target is not None:
        ours["target"] = asset.target.model_dump(exclude_none=True)
    if asset.team is not None:
        if _flat_team(asset.team):
            out["team"] = asset.team
        else:
            ours["team"] = asset.team
    for key in ("compliance", "data_quality", "change_management"):
        if getattr(asset, key) is not None:
            ours[_EXPORT_NAMES[key]] = getattr(asset, key)
    meta = dict(extra.pop(SCHEMA_OBJECT_KEY, None) or {})
    for key, value in extra.items():
        if key in _PASS_TOP:
            out[key] = value
        else:
            ours[key] = value
    custom += _custom_list(ours)

    pk = asset.primary_key
    properties = [_canonical_property(f, pk.index(f.name) + 1 if f.primary_key else None,
                                      f"schema[{i}]", path) for i, f in enumerate(asset.fields)]
    obj: dict[str, Any] = {"name": meta.pop("name", None) or asset.object or asset.name, **meta,
                           "logicalType": "object", "properties": properties}
    if asset.quality:
        obj["quality"] = _dump(asset.quality)
    if asset.object is not None:
        obj["customProperties"] = [*(obj.get("customProperties") or []), {"property": "object", "value": asset.object}]
    out["schema"] = [obj]
    if custom:
        out["customProperties"] = custom
    problems = official_problems(out)
    if problems:
        _raise(path, problems, prefix="the ODCS export is rejected by the official model: ")
    return out


def canonical_yaml(contract: dict[str, Any]) -> str:
    """The contract as YAML, keys in the order written."""
    return yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=120)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def describe_asset(asset: AssetDefinition, raw_form: str) -> str:
    """One line saying what an asset file holds (for ``asset validate``)."""
    rules = len(asset.quality or []) + sum(len(f.quality or []) for f in asset.fields)
    key = ", ".join(asset.primary_key) or "none"
    return (f"{raw_form}: asset {asset.name} (object {asset.object or asset.name}), {len(asset.fields)} fields, "
            f"primary key: {key}, {rules} quality rule(s)")


__all__ = [
    "EXPORT_API_VERSION",
    "asset_from_canonical",
    "canonical_yaml",
    "describe_asset",
    "field_type",
    "flat_from_canonical",
    "is_canonical",
    "odcs_type",
    "official_problems",
    "to_canonical",
    "type_from_logical",
    "type_from_physical",
    "validate_odcs",
    "write_text",
]
