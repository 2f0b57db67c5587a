"""Singer RECORDs → Arrow batches, typed by the stream's SCHEMA with the one JSON Schema → Arrow mapping of every
engine (``engines.common.schema``): what is Singer's own is where the record sits in its message (``record``) and
the error, naming the line, that a line which is not a RECORD raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from dativo_ingest.engines.common.records import StreamColumns
from dativo_ingest.engines.common.schema import JSON, arrow_type, column_kind
from dativo_ingest.engines.singer.protocol import RECORD, SchemaMessage, SingerProtocolError, parse_message, record_data

RECORD_PATH = ("record",)


def record_of(line: bytes, n: int | None = None) -> dict[str, Any]:
    """The ``record`` of RECORD line ``n``, or ``SingerProtocolError`` naming the line."""
    kind, message = parse_message(line, n)
    if kind != RECORD:
        raise SingerProtocolError(n, f"a {kind} message among RECORD lines: {line[:80]!r}")
    return record_data(message, n)


@dataclass
class StreamSchema:
    """A stream's SCHEMA message, and the columns its records become."""

    stream: str
    json_schema: dict[str, Any]
    key_properties: list[str] = field(default_factory=list)
    bookmark_properties: list[str] = field(default_factory=list)

    @classmethod
    def from_message(cls, message: dict[str, Any], n: int | None = None) -> StreamSchema:
        """From a SCHEMA message (``SingerProtocolError`` naming line ``n`` when it is not one)."""
        parsed = SchemaMessage.parse(message, n)
        return cls(parsed.stream, parsed.schema, parsed.key_properties, parsed.bookmark_properties)

    @property
    def properties(self) -> dict[str, Any]:
        """The properties the SCHEMA declares."""
        return dict(self.json_schema.get("properties") or {})

    @property
    def arrow_schema(self) -> pa.Schema:
        """Every property's column as its values make it when they fit the declared type; the JSON Schema
        ``format`` is kept as field metadata (``singer.format``), JSON-text columns are marked ``singer.json``."""
        fields = []
        for name, prop in self.properties.items():
            meta: dict[bytes, bytes] = {}
            if isinstance(prop, dict) and isinstance(prop.get("format"), str):
                meta[b"singer.format"] = prop["format"].encode()
            if column_kind(prop) == JSON:
                meta[b"singer.json"] = b"true"
            fields.append(pa.field(str(name), arrow_type(prop), metadata=meta or None))
        return pa.schema(fields)

    def columns(self, wanted: Iterable[str] | None = None) -> StreamColumns:
        """The columns of the stream's records: those named in ``wanted`` (matched ignoring case) that the SCHEMA
        declares, or all of them (None)."""
        names: Sequence[str] | None = None
        if wanted is not None:
            keep = {w.lower() for w in wanted}
            names = [p for p in self.properties if p.lower() in keep]
        return StreamColumns(self.json_schema, names, path=RECORD_PATH, record_of=record_of)


__all__ = ["RECORD_PATH", "StreamSchema", "record_of"]
