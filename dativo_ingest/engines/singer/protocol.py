"""The Singer wire format: the messages on a tap's stdout (the catalog: ``singer.catalog``). Parse only.

Messages (one JSON object per line): ``SCHEMA`` (a stream's JSON Schema, ``key_properties``,
``bookmark_properties``), ``RECORD``, ``STATE`` (opaque to the spec; SDK taps keep ``bookmarks``),
``ACTIVATE_VERSION`` (the stream's rows of older versions are gone: a full-table replace) and the
Meltano SDK's ``BATCH`` (records in local jsonl / parquet files named by a manifest).

Like the Singer SDK's ``singerlib``, this module knows messages only: it imports nothing of the engine (records →
Arrow: ``singer.records``; reading a tap's stdout: ``singer.reader``). Every error names the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

RECORD = "RECORD"
SCHEMA = "SCHEMA"
STATE = "STATE"
ACTIVATE_VERSION = "ACTIVATE_VERSION"
BATCH = "BATCH"
#: how SDK taps (compact) and singer-python taps (spaced) start a RECORD line
RECORD_PREFIXES = (b'{"type":"RECORD","stream":"', b'{"type": "RECORD", "stream": "')
BATCH_FORMATS = ("jsonl", "parquet")
_SNIPPET = 80


class SingerProtocolError(Exception):
    """The tap broke the Singer protocol (a line that is not JSON, a RECORD before its SCHEMA, …)."""

    def __init__(self, line_no: int | None, message: str) -> None:
        self.line_no = line_no
        super().__init__(f"line {line_no}: {message}" if line_no else message)


def snippet(line: bytes | str) -> str:
    """The start of a line, on one line, for an error message."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


def parse_message(line: bytes, n: int | None) -> tuple[str, dict[str, Any]]:
    """``(TYPE in capitals, message)`` of line ``n``, or ``SingerProtocolError``."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise SingerProtocolError(n, f"not a JSON message: {snippet(line)!r}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise SingerProtocolError(n, f"not a Singer message (a JSON object with a 'type'): {snippet(line)!r}")
    return message["type"].upper(), message


def message_stream(message: dict[str, Any], n: int | None) -> str:
    """The ``stream`` a message is about."""
    stream = message.get("stream")
    if not isinstance(stream, str) or not stream:
        raise SingerProtocolError(n, f"{message.get('type')} message without a 'stream'")
    return stream


def record_data(message: dict[str, Any], n: int | None) -> dict[str, Any]:
    """The ``record`` object of a RECORD message."""
    record = message.get("record")
    if not isinstance(record, dict):
        raise SingerProtocolError(n, f"RECORD for stream '{message.get('stream')}' without a 'record' object")
    return record


def state_value(message: dict[str, Any], n: int | None) -> dict[str, Any]:
    """The ``value`` object of a STATE message."""
    value = message.get("value")
    if not isinstance(value, dict):
        raise SingerProtocolError(n, "STATE message without a 'value' object")
    return value


def activate_version(message: dict[str, Any], n: int | None) -> int:
    """The ``version`` of an ACTIVATE_VERSION message."""
    try:
        return int(message["version"])
    except (KeyError, TypeError, ValueError):
        raise SingerProtocolError(n, f"ACTIVATE_VERSION for '{message.get('stream')}' without an integer "
                                     f"version") from None


@dataclass(frozen=True)
class SchemaMessage:
    """A SCHEMA message."""

    stream: str
    schema: dict[str, Any]
    key_properties: list[str]
    bookmark_properties: list[str]

    @classmethod
    def parse(cls, message: dict[str, Any], n: int | None = None) -> SchemaMessage:
        """From a SCHEMA message, or ``SingerProtocolError`` naming line ``n``."""
        stream = message_stream(message, n)
        schema = message.get("schema")
        if not isinstance(schema, dict):
            raise SingerProtocolError(n, f"stream '{stream}': SCHEMA message without a 'schema' object")
        if not isinstance(schema.get("properties") or {}, dict):
            raise SingerProtocolError(n, f"stream '{stream}': SCHEMA message whose schema.properties is not an "
                                         f"object")
        return cls(stream, schema, [str(k) for k in message.get("key_properties") or []],
                   [str(k) for k in message.get("bookmark_properties") or []])


@dataclass(frozen=True)
class BatchMessage:
    """A BATCH message (Meltano SDK): the stream's records are in the files of ``manifest``."""

    stream: str
    format: str
    compression: str | None
    files: list[Path]

    @classmethod
    def parse(cls, message: dict[str, Any], n: int | None) -> BatchMessage:
        """From a BATCH message, or ``SingerProtocolError`` naming line ``n``."""
        stream = message_stream(message, n)
        encoding = message.get("encoding") or {}
        fmt = str(encoding.get("format") or "").lower()
        if fmt not in BATCH_FORMATS:
            raise SingerProtocolError(n, f"BATCH for '{stream}' in format '{fmt}' (only jsonl and parquet are read)")
        compression = str(encoding.get("compression") or "").lower() or None
        return cls(stream, fmt, compression, [batch_file_path(str(url), n) for url in message.get("manifest") or []])


def batch_file_path(url: str, line_no: int | None) -> Path:
    """A BATCH manifest entry (``file:///…`` or a plain path) → a local path."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path if parsed.scheme else url))
    raise SingerProtocolError(line_no, f"BATCH manifest entry '{parsed.scheme}://…' is not a local file "
                                       f"(only file:// batch storage is read; set the tap's batch_config "
                                       f"storage root to a local folder)")


def bookmarks(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-stream bookmarks of a Singer state (``{"bookmarks": {tap_stream_id: {...}}}``)."""
    marks = state.get("bookmarks") if isinstance(state, dict) else None
    return {str(k): v for k, v in marks.items() if isinstance(v, dict)} if isinstance(marks, dict) else {}


__all__ = ["ACTIVATE_VERSION", "BATCH", "RECORD", "RECORD_PREFIXES", "SCHEMA", "STATE", "BatchMessage",
           "SchemaMessage", "SingerProtocolError", "activate_version", "batch_file_path", "bookmarks",
           "message_stream", "parse_message", "record_data", "snippet", "state_value"]
