"""The Airbyte protocol, wire format only: messages on a connector's stdout, catalogs and state on its command line.

A connector is run as ``spec``, ``check --config F``, ``discover --config F`` and
``read --config F --catalog F [--state F]``; it prints one JSON message per line:
``RECORD``, ``STATE`` (``STREAM`` / ``GLOBAL`` / ``LEGACY``), ``LOG``, ``TRACE`` (``ERROR``, ``ESTIMATE``,
``STREAM_STATUS``, ``ANALYTICS``), ``CONTROL``, ``SPEC``, ``CONNECTION_STATUS``, ``CATALOG``.
Nothing here runs a process or knows about jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

RECORD = "RECORD"
STATE = "STATE"
LOG = "LOG"
TRACE = "TRACE"
CONTROL = "CONTROL"
SPEC = "SPEC"
CONNECTION_STATUS = "CONNECTION_STATUS"
CATALOG = "CATALOG"
MESSAGE_TYPES = frozenset({RECORD, STATE, LOG, TRACE, CONTROL, SPEC, CONNECTION_STATUS, CATALOG})

STATE_STREAM = "STREAM"
STATE_GLOBAL = "GLOBAL"
STATE_LEGACY = "LEGACY"

FULL_REFRESH = "full_refresh"
INCREMENTAL = "incremental"


class ProtocolError(ValueError):
    """A line that is JSON but not a valid Airbyte message (a RECORD without data, a STATE without a stream…)."""


def parse_message(raw: bytes | str) -> dict[str, Any] | None:
    """One stdout line → the message, or None when the line is not a protocol message at all.

    Connectors sometimes print plain text to stdout; the Airbyte platform ignores such lines, and so
    do we (the caller logs them; the conformance report counts them).
    """
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") not in MESSAGE_TYPES:
        return None
    return message


def check_record(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(stream, data)`` of a RECORD message, or ``ProtocolError``."""
    record = message.get("record")
    if not isinstance(record, dict) or not isinstance(record.get("stream"), str) \
            or not isinstance(record.get("data"), dict):
        raise ProtocolError("RECORD message without 'record.stream' (a string) and 'record.data' (an object)")
    return record["stream"], record["data"]


#: how RECORD lines begin in the usual serialisations (compact, and Python's ``json.dumps``)
RECORD_PREFIXES = (b'{"type":"RECORD","record":{"stream":"', b'{"type": "RECORD", "record": {"stream": "')


def record_prefix(line: bytes) -> tuple[str, bytes] | None:
    """``(stream, the line's prefix up to the stream's name)`` of a RECORD line in the usual serialisations,
    found without parsing it; None otherwise."""
    for prefix in RECORD_PREFIXES:
        if line.startswith(prefix):
            end = line.find(b'"', len(prefix))
            if end < 0:
                return None
            name = line[len(prefix):end]
            return None if b"\\" in name else (name.decode("utf-8", "replace"), line[: end + 1])
    return None


# -- catalog -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AirbyteStream:
    """One stream of a CATALOG message (``discover``)."""

    name: str
    json_schema: dict[str, Any]
    supported_sync_modes: tuple[str, ...] = (FULL_REFRESH,)
    source_defined_cursor: bool = False
    default_cursor_field: tuple[str, ...] = ()
    source_defined_primary_key: tuple[tuple[str, ...], ...] = ()
    namespace: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AirbyteStream:
        """From a catalog's stream object, or ``ProtocolError``."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ProtocolError("a catalog stream without a 'name'")
        schema = data.get("json_schema")
        if not isinstance(schema, dict):
            raise ProtocolError(f"catalog stream '{data['name']}' has no 'json_schema' object")
        return cls(
            name=data["name"],
            json_schema=schema,
            supported_sync_modes=tuple(data.get("supported_sync_modes") or (FULL_REFRESH,)),
            source_defined_cursor=bool(data.get("source_defined_cursor")),
            default_cursor_field=tuple(data.get("default_cursor_field") or ()),
            source_defined_primary_key=tuple(tuple(p) for p in data.get("source_defined_primary_key") or ()),
            namespace=data.get("namespace"),
            raw=data,
        )

    @property
    def supports_incremental(self) -> bool:
        """Whether the stream can be read incrementally."""
        return INCREMENTAL in self.supported_sync_modes

    @property
    def properties(self) -> dict[str, Any]:
        """The properties of the stream's JSON schema."""
        props = self.json_schema.get("properties")
        return props if isinstance(props, dict) else {}


@dataclass
class ConfiguredStream:
    """One stream of the configured catalog: how it is read."""

    stream: AirbyteStream
    sync_mode: str = FULL_REFRESH
    destination_sync_mode: str = "append"
    cursor_field: list[str] = field(default_factory=list)
    primary_key: list[list[str]] = field(default_factory=list)
    #: the json_schema sent to the connector (the stream's own, or narrowed to the selected fields)
    json_schema: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stream as the ``--catalog`` file has it."""
        stream = dict(self.stream.raw) or {"name": self.stream.name, "json_schema": self.stream.json_schema,
                                           "supported_sync_modes": list(self.stream.supported_sync_modes)}
        if self.json_schema is not None:
            stream["json_schema"] = self.json_schema
        out: dict[str, Any] = {"stream": stream, "sync_mode": self.sync_mode,
                               "destination_sync_mode": self.destination_sync_mode}
        if self.cursor_field:
            out["cursor_field"] = list(self.cursor_field)
        if self.primary_key:
            out["primary_key"] = [list(p) for p in self.primary_key]
        return out


@dataclass
class ConfiguredCatalog:
    """The ``--catalog`` file of ``read``: which streams, in which sync mode, with which cursor and key."""

    streams: list[ConfiguredStream]

    def to_dict(self) -> dict[str, Any]:
        """The catalog as the ``--catalog`` file has it."""
        return {"streams": [s.to_dict() for s in self.streams]}

    def to_json(self) -> bytes:
        """The ``--catalog`` file's bytes."""
        return orjson.dumps(self.to_dict())

    def by_name(self) -> dict[str, ConfiguredStream]:
        """The configured streams by name."""
        return {s.stream.name: s for s in self.streams}


def catalog_streams(message: dict[str, Any]) -> list[AirbyteStream]:
    """The streams of a CATALOG message, or ``ProtocolError``."""
    catalog = message.get("catalog")
    if not isinstance(catalog, dict) or not isinstance(catalog.get("streams"), list):
        raise ProtocolError("CATALOG message without 'catalog.streams'")
    return [AirbyteStream.from_dict(s) for s in catalog["streams"]]


def connection_specification(message: dict[str, Any]) -> dict[str, Any]:
    """The ``connectionSpecification`` of a SPEC message, or ``ProtocolError``."""
    spec = message.get("spec")
    schema = spec.get("connectionSpecification") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise ProtocolError("SPEC message without 'spec.connectionSpecification'")
    return schema


def connection_status(message: dict[str, Any]) -> tuple[str, str]:
    """``(SUCCEEDED|FAILED, message)`` of a CONNECTION_STATUS message."""
    status = message.get("connectionStatus")
    if not isinstance(status, dict) or status.get("status") not in ("SUCCEEDED", "FAILED"):
        raise ProtocolError("CONNECTION_STATUS message without 'connectionStatus.status' SUCCEEDED or FAILED")
    return status["status"], str(status.get("message") or "")


# -- state -------------------------------------------------------------------------------------------------


def state_kind(state: dict[str, Any]) -> str:
    """STREAM, GLOBAL or LEGACY (a state without ``type`` is the legacy ``{"data": ...}`` shape)."""
    kind = state.get("type")
    if kind in (STATE_STREAM, STATE_GLOBAL, STATE_LEGACY):
        return str(kind)
    if kind is None and "data" in state:
        return STATE_LEGACY
    raise ProtocolError(f"STATE message of unknown type {kind!r} (expected STREAM, GLOBAL or LEGACY)")


def descriptor(name: str, namespace: str | None = None) -> dict[str, Any]:
    """A stream descriptor (``name``, and ``namespace`` when there is one)."""
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def stream_state_message(name: str, stream_state: Any, namespace: str | None = None) -> dict[str, Any]:
    """A STREAM state for one stream."""
    return {"type": STATE_STREAM,
            "stream": {"stream_descriptor": descriptor(name, namespace), "stream_state": stream_state}}


def global_state_message(shared_state: Any, stream_states: list[tuple[str, str | None, Any]]) -> dict[str, Any]:
    """``stream_states``: ``(name, namespace, state)`` per stream."""
    return {"type": STATE_GLOBAL, "global": {
        "shared_state": shared_state,
        "stream_states": [{"stream_descriptor": descriptor(n, ns), "stream_state": s} for n, ns, s in stream_states],
    }}


def stream_states(state: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(stream name, stream_state)`` pairs of a STREAM or GLOBAL state."""
    kind = state_kind(state)
    if kind == STATE_STREAM:
        entries = [state.get("stream")]
    elif kind == STATE_GLOBAL:
        glob = state.get("global")
        entries = glob.get("stream_states") if isinstance(glob, dict) else None
        if not isinstance(entries, list):
            raise ProtocolError("GLOBAL state without 'global.stream_states'")
    else:
        return []
    out: list[tuple[str, Any]] = []
    for entry in entries:
        desc = entry.get("stream_descriptor") if isinstance(entry, dict) else None
        if not isinstance(desc, dict) or not isinstance(desc.get("name"), str):
            raise ProtocolError(f"{kind} state without 'stream_descriptor.name'")
        out.append((desc["name"], entry.get("stream_state")))
    return out


# -- trace and control -------------------------------------------------------------------------------------


def trace_error(trace: dict[str, Any]) -> str:
    """The user-facing message of a TRACE ERROR (``error.message``, else ``internal_message``)."""
    error = trace.get("error") if isinstance(trace.get("error"), dict) else {}
    text = str(error.get("message") or error.get("internal_message") or "the connector reported an error")
    return " ".join(text.split())


def control_config(message: dict[str, Any]) -> dict[str, Any] | None:
    """The new connector config of a CONTROL ``CONNECTOR_CONFIG`` message, else None."""
    control = message.get("control")
    if not isinstance(control, dict) or control.get("type") != "CONNECTOR_CONFIG":
        return None
    config = (control.get("connectorConfig") or {}).get("config")
    return config if isinstance(config, dict) else None
