"""The state envelope: one JSON document, committed in the Iceberg snapshot under ``dativo.state``.

``{"version": 1, "engine": ..., "dialect": ..., "streams": {stream: {...engine-native...}},
"shared": {...}, "run_id": ..., "committed_at": ...}``
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

ENVELOPE_VERSION = 1


@dataclass
class StateEnvelope:
    engine: str = "native"
    dialect: str = "native"
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    committed_at: str | None = None
    version: int = ENVELOPE_VERSION

    @classmethod
    def from_json(cls, text: str | None) -> StateEnvelope | None:
        if not text:
            return None
        data = orjson.loads(text)
        if not isinstance(data, dict) or data.get("version") != ENVELOPE_VERSION:
            raise ValueError(f"unsupported state envelope (version {data.get('version')!r})")
        return cls(
            engine=data.get("engine", "native"),
            dialect=data.get("dialect", "native"),
            streams=dict(data.get("streams") or {}),
            shared=dict(data.get("shared") or {}),
            run_id=data.get("run_id"),
            committed_at=data.get("committed_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "engine": self.engine,
            "dialect": self.dialect,
            "streams": self.streams,
            "shared": self.shared,
            "run_id": self.run_id,
            "committed_at": self.committed_at,
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS).decode()

    def stream(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.streams.get(name) or {})

    def advanced(self, *, run_id: str, streams: dict[str, dict[str, Any]], engine: str, dialect: str
                 ) -> StateEnvelope:
        """A copy with the given streams replaced, stamped for a commit now."""
        merged = {**copy.deepcopy(self.streams), **copy.deepcopy(streams)}
        return StateEnvelope(
            engine=engine,
            dialect=dialect,
            streams=merged,
            shared=copy.deepcopy(self.shared),
            run_id=run_id,
            committed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
