"""The Singer catalog (what ``--discover`` prints and ``--catalog`` / ``--properties`` take): read and select.

Selection is metadata: ``selected`` on the stream (breadcrumb ``[]``) and on each property
(``["properties", name]``), with ``replication-method`` / ``replication-key`` on the stream. Meltano's
``select`` rules (``stream.property`` globs, ``!`` to exclude) and ``metadata`` rules are applied the
same way. Every function returns a modified copy.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def catalog_streams(catalog: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``tap_stream_id`` → the catalog's stream entry."""
    out: dict[str, dict[str, Any]] = {}
    for entry in catalog.get("streams") or []:
        if isinstance(entry, dict):
            sid = entry.get("tap_stream_id") or entry.get("stream")
            if sid:
                out[str(sid)] = entry
    return out


def stream_metadata(entry: dict[str, Any], breadcrumb: Sequence[str] = ()) -> dict[str, Any]:
    """The metadata object at ``breadcrumb`` of a catalog stream (created when missing)."""
    items = entry.setdefault("metadata", [])
    for item in items:
        if isinstance(item, dict) and list(item.get("breadcrumb") or []) == list(breadcrumb):
            return item.setdefault("metadata", {})
    created: dict[str, Any] = {}
    items.append({"breadcrumb": list(breadcrumb), "metadata": created})
    return created


def stream_properties(entry: dict[str, Any]) -> list[str]:
    """The property names of a catalog stream's schema."""
    props = (entry.get("schema") or {}).get("properties") or {}
    return [str(p) for p in props] if isinstance(props, dict) else []


@dataclass(frozen=True)
class Selection:
    """What to select in one catalog stream."""

    tap_stream_id: str
    #: property names to select (None: all); automatic properties are always sent by the tap
    properties: Sequence[str] | None = None
    replication_method: str | None = None
    replication_key: str | None = None


def select_streams(catalog: dict[str, Any], selections: Sequence[Selection], *, legacy_schema_flags: bool
                   ) -> dict[str, Any]:
    """A copy of ``catalog`` with exactly ``selections`` selected (stream and property metadata).

    ``legacy_schema_flags`` also sets ``"selected": true`` inside the JSON Schema, for taps of the
    ``properties`` capability that read selection from there.
    """
    out = copy.deepcopy(catalog)
    wanted = {s.tap_stream_id: s for s in selections}
    for sid, entry in catalog_streams(out).items():
        sel = wanted.get(sid)
        top = stream_metadata(entry)
        top["selected"] = sel is not None
        if legacy_schema_flags:
            entry.setdefault("schema", {})["selected"] = sel is not None
        if sel is None:
            continue
        if sel.replication_method:
            top["replication-method"] = sel.replication_method
            entry["replication_method"] = sel.replication_method
        if sel.replication_key:
            top["replication-key"] = sel.replication_key
            entry["replication_key"] = sel.replication_key
        keep = None if sel.properties is None else {p.lower() for p in sel.properties}
        if sel.replication_key and keep is not None:
            keep.add(sel.replication_key.lower())
        props = (entry.get("schema") or {}).get("properties") or {}
        for prop in stream_properties(entry):
            chosen = keep is None or prop.lower() in keep
            stream_metadata(entry, ("properties", prop))["selected"] = chosen
            if legacy_schema_flags and isinstance(props.get(prop), dict):
                props[prop]["selected"] = chosen
    return out


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def apply_select_rules(catalog: dict[str, Any], rules: Sequence[str]) -> dict[str, Any]:
    """Meltano ``select`` rules (``stream.prop``, ``stream.*``, ``!stream.prop``, globs) on a copy of the catalog.

    Like Meltano, everything is deselected first; rules apply in order, ``!`` rules win.
    """
    out = copy.deepcopy(catalog)
    parsed = []
    for rule in rules:
        negated = rule.startswith("!")
        body = rule[1:] if negated else rule
        stream, _, prop = body.partition(".")
        parsed.append((negated, stream, prop or "*"))
    for sid, entry in catalog_streams(out).items():
        stream_on = any(not neg and _matches(s, sid) for neg, s, _ in parsed)
        stream_off = any(neg and _matches(s, sid) and p == "*" for neg, s, p in parsed)
        stream_metadata(entry)["selected"] = stream_on and not stream_off
        for prop in stream_properties(entry):
            on = any(not neg and _matches(s, sid) and _matches(p, prop) for neg, s, p in parsed)
            off = any(neg and _matches(s, sid) and _matches(p, prop) for neg, s, p in parsed)
            stream_metadata(entry, ("properties", prop))["selected"] = on and not off
    return out


def apply_metadata_rules(catalog: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    """Meltano ``metadata`` rules on a copy: ``{stream_glob: {key: value, prop_glob: {key: value}}}``.

    Top-level keys (``replication-method``, ``replication-key``, …) go on the stream; a mapping under a
    property name goes on that property.
    """
    out = copy.deepcopy(catalog)
    for sid, entry in catalog_streams(out).items():
        for pattern, values in rules.items():
            if not _matches(str(pattern), sid) or not isinstance(values, dict):
                continue
            for key, value in values.items():
                if isinstance(value, dict):
                    for prop in stream_properties(entry):
                        if _matches(str(key), prop):
                            stream_metadata(entry, ("properties", prop)).update(value)
                else:
                    stream_metadata(entry)[str(key)] = value
                    if key == "replication-method":
                        entry["replication_method"] = value
                    elif key == "replication-key":
                        entry["replication_key"] = value
    return out


def selected_stream_ids(catalog: dict[str, Any]) -> list[str]:
    """The ``tap_stream_id`` of every stream selected in ``catalog``."""
    return [sid for sid, entry in catalog_streams(catalog).items() if stream_metadata(entry).get("selected")]
