"""The Airbyte state dialects (STREAM, GLOBAL, LEGACY) ⇄ the state envelope, so a job can switch engines.

A stream's entry: ``{"airbyte": {"stream_state": {…}, "namespace": …}, "cursor": {"field", "value"}}``; a
GLOBAL state's shared part lives in the envelope's ``shared["airbyte_global"]``, a LEGACY state's whole
``data`` in ``shared["airbyte_legacy"]``. The envelope's dialect says which of the three to give back.
"""

from __future__ import annotations

import copy
from typing import Any

from dativo_ingest.engines.airbyte.protocol import (
    STATE_GLOBAL,
    STATE_LEGACY,
    global_state_message,
    state_kind,
    stream_state_message,
    stream_states,
)
from dativo_ingest.state.cursor import cursor_after
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.stream import Checkpoint

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
    if current is None or cursor_after(cursor["value"], current):
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
