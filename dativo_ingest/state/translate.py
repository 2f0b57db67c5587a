"""Translation between engine state dialects and the envelope, so a job can switch engines and keep its place.

Singer: a stream's entry in the envelope is ``{"singer": {"tap_stream_id": …, "bookmark": {…}}, "cursor":
{"field": …, "value": …}}``. The bookmark is the tap's own (``replication_key``, ``replication_key_value``
and whatever else the tap keeps); ``cursor`` is the native dialect's cursor, which the runner also
advances from the rows it committed. Either can start the other engine: the later of the two wins.

Airbyte: see the section at the end (same idea: the connector's own state beside the native cursor).
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from dativo_ingest.protocol.airbyte import (
    STATE_GLOBAL,
    STATE_LEGACY,
    global_state_message,
    state_kind,
    stream_state_message,
    stream_states,
)
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.stream import Checkpoint


def _as_comparable(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float):
        return 0, float(value)
    text = str(value)
    try:
        return 0, float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return 1, parsed
    except ValueError:
        return 2, text


def cursor_is_after(value: Any, other: Any) -> bool:
    """``value > other`` for cursor values: numbers as numbers, ISO 8601 as instants, else as text."""
    a, b = _as_comparable(value), _as_comparable(other)
    if a[0] != b[0]:
        return str(value) > str(other)
    return bool(a[1] > b[1])


def cursor_from_singer_bookmark(bookmark: dict[str, Any]) -> dict[str, Any] | None:
    """A Singer bookmark's replication key and value as the native cursor ``{"field", "value"}``."""
    key, value = bookmark.get("replication_key"), bookmark.get("replication_key_value")
    if not key or value is None:
        return None
    return {"field": str(key), "value": value if isinstance(value, str) else str(value)}


def singer_stream_state(tap_stream_id: str, bookmark: dict[str, Any]) -> dict[str, Any]:
    """The envelope entry for one stream from the tap's bookmark (a Checkpoint's ``state``)."""
    entry: dict[str, Any] = {"singer": {"tap_stream_id": tap_stream_id, "bookmark": copy.deepcopy(bookmark)}}
    cursor = cursor_from_singer_bookmark(bookmark)
    if cursor is not None:
        entry["cursor"] = cursor
    return entry


def singer_bookmark(entry: dict[str, Any], tap_stream_id: str, replication_key: str | None) -> dict[str, Any] | None:
    """The bookmark to give the tap for one stream, from its envelope entry (any engine wrote it)."""
    singer = entry.get("singer") if isinstance(entry.get("singer"), dict) else {}
    bookmark = copy.deepcopy(singer.get("bookmark")) if singer.get("tap_stream_id") == tap_stream_id else None
    bookmark = bookmark if isinstance(bookmark, dict) else None
    cursor = entry.get("cursor") if isinstance(entry.get("cursor"), dict) else None
    key = replication_key or (bookmark or {}).get("replication_key")
    if cursor and key and cursor.get("field") == key and cursor.get("value") is not None:
        current = (bookmark or {}).get("replication_key_value")
        if bookmark is None or bookmark.get("replication_key") != key or current is None \
                or cursor_is_after(cursor["value"], current):
            bookmark = {k: v for k, v in (bookmark or {}).items() if k not in ("progress_markers", "partitions")}
            bookmark.update({"replication_key": key, "replication_key_value": cursor["value"]})
    if bookmark and replication_key and bookmark.get("replication_key") not in (None, replication_key):
        return None  # the replication key changed: the old bookmark says nothing about the new key
    return bookmark or None


def singer_state_from_envelope(envelope: StateEnvelope, streams: dict[str, tuple[str, str | None]]
                               ) -> dict[str, Any]:
    """The Singer state for the tap: ``streams`` maps our stream → (tap_stream_id, replication key)."""
    marks: dict[str, Any] = {}
    for ours, (tap_stream_id, replication_key) in streams.items():
        bookmark = singer_bookmark(envelope.streams.get(ours) or {}, tap_stream_id, replication_key)
        if bookmark:
            marks[tap_stream_id] = bookmark
    return {"bookmarks": marks} if marks else {}


# -- Airbyte -----------------------------------------------------------------------------------------------
# A stream's entry: ``{"airbyte": {"stream_state": {…}, "namespace": …}, "cursor": {"field", "value"}}``; a
# GLOBAL state's shared part lives in the envelope's ``shared["airbyte_global"]``, a LEGACY state's whole
# ``data`` in ``shared["airbyte_legacy"]``. The envelope's dialect says which of the three to give back.

AIRBYTE_DIALECTS = ("airbyte.stream", "airbyte.global", "airbyte.legacy")


def cursor_from_airbyte_state(stream_state: Any, cursor_field: str | None) -> dict[str, Any] | None:
    """The native cursor in an Airbyte stream state that keeps its cursor under the cursor field's name."""
    if not cursor_field or not isinstance(stream_state, dict):
        return None
    value = stream_state.get(cursor_field)
    if value is None or isinstance(value, dict | list | bool):
        return None
    return {"field": cursor_field, "value": value if isinstance(value, str) else str(value)}


def airbyte_stream_entry(stream_state: Any, cursor_field: str | None, namespace: str | None = None
                         ) -> dict[str, Any]:
    """The envelope entry for one stream from its Airbyte ``stream_state`` (a Checkpoint's ``state``)."""
    airbyte: dict[str, Any] = {"stream_state": copy.deepcopy(stream_state)}
    if namespace:
        airbyte["namespace"] = namespace
    entry: dict[str, Any] = {"airbyte": airbyte}
    cursor = cursor_from_airbyte_state(stream_state, cursor_field)
    if cursor is not None:
        entry["cursor"] = cursor
    return entry


def airbyte_checkpoints(state: dict[str, Any], cursor_fields: dict[str, str | None]) -> list[Checkpoint]:
    """One STATE message's ``state`` → Checkpoints (per stream; ``stream=None`` for the shared part)."""
    kind = state_kind(state)
    if kind == STATE_LEGACY:
        data = state.get("data")
        out = [Checkpoint(None, {"airbyte_legacy": copy.deepcopy(data)}, dialect="airbyte.legacy")]
        if isinstance(data, dict):  # most legacy states are {stream: {cursor_field: value}}
            for name, cursor_field in cursor_fields.items():
                cursor = cursor_from_airbyte_state(data.get(name), cursor_field)
                if cursor is not None:
                    out.append(Checkpoint(name, {"cursor": cursor}, dialect="airbyte.legacy"))
        return out
    dialect = "airbyte.global" if kind == STATE_GLOBAL else "airbyte.stream"
    out = [Checkpoint(name, airbyte_stream_entry(stream_state, cursor_fields.get(name)), dialect=dialect)
           for name, stream_state in stream_states(state)]
    if kind == STATE_GLOBAL:
        shared = (state.get("global") or {}).get("shared_state")
        out.append(Checkpoint(None, {"airbyte_global": {"shared_state": copy.deepcopy(shared)}}, dialect=dialect))
    return out


def airbyte_stream_state(entry: dict[str, Any], cursor_field: str | None, *, numeric: bool = False) -> Any:
    """The ``stream_state`` to give the connector for one stream, from its envelope entry (any engine wrote it).

    The connector's own state is used as it is, unless the native cursor is later (another engine ran
    since): then the cursor field's value in it is moved forward. ``numeric``: the cursor is a number.
    """
    airbyte = entry.get("airbyte") if isinstance(entry.get("airbyte"), dict) else {}
    stream_state = copy.deepcopy(airbyte.get("stream_state"))
    cursor = entry.get("cursor") if isinstance(entry.get("cursor"), dict) else None
    if not (cursor and cursor_field and cursor.get("field") == cursor_field and cursor.get("value") is not None):
        return stream_state
    if stream_state is not None and not isinstance(stream_state, dict):
        return stream_state  # a state we cannot read: keep the connector's own
    current = (stream_state or {}).get(cursor_field)
    if current is None or cursor_is_after(cursor["value"], current):
        value: Any = cursor["value"]
        if numeric:
            try:
                value = int(value) if str(value).lstrip("-").isdigit() else float(value)
            except ValueError:
                pass
        stream_state = {**(stream_state or {}), cursor_field: value}
    return stream_state


def airbyte_state_from_envelope(envelope: StateEnvelope, streams: list[tuple[str, str | None, str | None]],
                                *, numeric_cursors: frozenset[str] = frozenset()) -> Any:
    """The ``--state`` document for the connector, or None when there is nothing to resume from.

    ``streams``: ``(name, namespace, cursor field)`` of each configured stream. A LEGACY state is given
    back as its ``data`` object; STREAM and GLOBAL states as a list of state messages.
    """
    shared = envelope.shared or {}
    if envelope.dialect == "airbyte.legacy" and shared.get("airbyte_legacy") is not None:
        return copy.deepcopy(shared["airbyte_legacy"])
    per_stream: list[tuple[str, str | None, Any]] = []
    for name, namespace, cursor_field in streams:
        entry = envelope.streams.get(name) or {}
        stream_state = airbyte_stream_state(entry, cursor_field, numeric=name in numeric_cursors)
        if stream_state is not None:
            saved_ns = (entry.get("airbyte") or {}).get("namespace") if isinstance(entry.get("airbyte"), dict) else None
            per_stream.append((name, namespace or saved_ns, stream_state))
    if envelope.dialect == "airbyte.global" and isinstance(shared.get("airbyte_global"), dict):
        return [global_state_message(shared["airbyte_global"].get("shared_state"), per_stream)]
    return [stream_state_message(name, st, ns) for name, ns, st in per_stream] or None
