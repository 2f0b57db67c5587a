"""The state envelope: one JSON document, committed with the data (an Iceberg snapshot's ``dativo.state``, a
run manifest's ``state``).

``{"version": 1, "engine": ..., "dialect": ..., "streams": {stream: {...engine-native...}},
"shared": {...}, "run_id": ..., "committed_at": ...}``

``uncovered`` is the one rule every sink applies when another writer committed after the state a run
started from: may this run's commit be re-applied on top of theirs without losing what they recorded?
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from dativo_ingest.state.cursor import cursor_not_behind

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
        """The envelope in ``text`` (None for no state); ``ValueError`` when it is not one we can read."""
        if not text:
            return None
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"the state is not JSON ({exc})") from None
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
        """The envelope as a JSON-ready mapping."""
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
        """The envelope as JSON text (keys sorted: equal states give equal text)."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS).decode()

    def mapped(self, text: Any) -> StateEnvelope:
        """A copy whose JSON went through ``text`` (a str → str function, e.g. ``Secrets.conceal``)."""
        copy_ = StateEnvelope.from_json(text(self.to_json()))
        assert copy_ is not None
        return copy_

    def stream(self, name: str) -> dict[str, Any]:
        """A copy of one stream's entry (empty when the stream has none)."""
        return copy.deepcopy(self.streams.get(name) or {})

    def cursor_value(self, stream: str, cursor_field: str | None) -> Any:
        """The committed cursor of ``stream`` when it was kept on ``cursor_field`` (None: no such cursor, or one
        on another field, which must not filter this one)."""
        entry = (self.streams.get(stream) or {}).get("cursor") or {}
        return entry.get("value") if cursor_field and entry.get("field") == cursor_field else None

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

    def uncovered(self, theirs: StateEnvelope | None, base: StateEnvelope | None) -> str | None:
        """Why committing this state over ``theirs`` would lose what ``theirs`` recorded (None: it would not).

        Both were advanced from ``base`` by two writers; ``theirs`` landed first. This state covers theirs when,
        stream by stream, theirs is unchanged from the base or equal to ours, or both keep the same engine
        state and ours is not behind: the same cursor field with a value not before theirs, and every file
        they recorded recorded alike by us. The shared part must not have been changed by them alone.
        """
        b, t = base or StateEnvelope(), theirs or StateEnvelope()
        if t.shared not in (b.shared, self.shared):
            return "the other commit changed the shared state"
        for name in {**b.streams, **t.streams, **self.streams}:
            if not _stream_covers(self.streams.get(name), t.streams.get(name), b.streams.get(name)):
                return f"its state of stream '{name}' is behind or beside the other run's"
        return None

    def covers(self, theirs: StateEnvelope | None, base: StateEnvelope | None) -> bool:
        """Whether this state may be committed over ``theirs`` (see ``uncovered``)."""
        return self.uncovered(theirs, base) is None


def _stream_covers(ours: dict[str, Any] | None, theirs: dict[str, Any] | None, base: dict[str, Any] | None) -> bool:
    if theirs == base or theirs == ours:
        return True
    if ours is None or theirs is None:
        return False
    if {k: v for k, v in ours.items() if k not in ("cursor", "files")} != \
            {k: v for k, v in theirs.items() if k not in ("cursor", "files")}:
        return False
    if "cursor" in ours or "cursor" in theirs:
        mine, other = ours.get("cursor") or {}, theirs.get("cursor") or {}
        if mine.get("field") != other.get("field") or not cursor_not_behind(mine.get("value"), other.get("value")):
            return False
    if "files" in ours or "files" in theirs:
        mine_files, other_files = ours.get("files") or {}, theirs.get("files") or {}
        if any(mine_files.get(k) != v for k, v in other_files.items()):
            return False
    return True
