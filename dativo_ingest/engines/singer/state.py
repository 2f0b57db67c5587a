"""The Singer state dialect: a tap's bookmarks ⇄ the state envelope, so a job can switch engines and keep its place.

A stream's entry in the envelope is ``{"singer": {"tap_stream_id": …, "bookmark": {…}}, "cursor":
{"field": …, "value": …}}``. The bookmark is the tap's own (``replication_key``, ``replication_key_value``
and whatever else the tap keeps); ``cursor`` is the native dialect's cursor, which the runner also
advances from the rows it committed. Either can start the other engine: the later of the two wins.
"""

from __future__ import annotations

import copy
from typing import Any

from dativo_ingest.state.cursor import cursor_after
from dativo_ingest.state.envelope import StateEnvelope


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
                or cursor_after(cursor["value"], current):
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
