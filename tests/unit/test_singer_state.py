"""Singer bookmarks ⇄ the state envelope ⇄ the native cursor."""

from __future__ import annotations

from dativo_ingest.engines.singer.state import (
    singer_bookmark,
    singer_state_from_envelope,
    singer_stream_state,
)
from dativo_ingest.state.cursor import cursor_after as cursor_is_after
from dativo_ingest.state.envelope import StateEnvelope

BOOKMARK = {"replication_key": "updated_at", "replication_key_value": "2024-01-03T00:00:00.000000+00:00"}


def test_a_bookmark_becomes_an_envelope_entry_with_the_native_cursor():
    entry = singer_stream_state("public-orders", BOOKMARK)
    assert entry == {"singer": {"tap_stream_id": "public-orders", "bookmark": BOOKMARK},
                     "cursor": {"field": "updated_at", "value": "2024-01-03T00:00:00.000000+00:00"}}
    assert "cursor" not in singer_stream_state("s", {})  # a full-table stream has no cursor
    assert singer_stream_state("s", {"replication_key": "id", "replication_key_value": 7})["cursor"]["value"] == "7"


def test_the_tap_resumes_from_its_own_bookmark():
    envelope = StateEnvelope(streams={"orders": singer_stream_state("public-orders", BOOKMARK)})
    assert singer_state_from_envelope(envelope, {"orders": ("public-orders", "updated_at")}) == \
        {"bookmarks": {"public-orders": BOOKMARK}}


def test_a_native_cursor_starts_the_tap_and_the_later_value_wins():
    native = {"cursor": {"field": "updated_at", "value": "2024-02-01T00:00:00+00:00"}}
    assert singer_bookmark(native, "public-orders", "updated_at") == \
        {"replication_key": "updated_at", "replication_key_value": "2024-02-01T00:00:00+00:00"}
    # a native run after a singer one: the envelope holds an older bookmark and a newer cursor
    both = {**singer_stream_state("public-orders", {**BOOKMARK, "progress_markers": {"x": 1}}), **native}
    assert singer_bookmark(both, "public-orders", "updated_at")["replication_key_value"] == "2024-02-01T00:00:00+00:00"
    # a cursor that is not newer leaves the tap's bookmark (and its extra keys) alone
    older = {**singer_stream_state("public-orders", BOOKMARK),
             "cursor": {"field": "updated_at", "value": "2024-01-03T00:00:00+00:00"}}
    assert singer_bookmark(older, "public-orders", "updated_at") == BOOKMARK


def test_nothing_carries_over_to_another_key_or_stream():
    entry = singer_stream_state("public-orders", BOOKMARK)
    assert singer_bookmark(entry, "public-orders", "id") is None  # the replication key changed
    assert singer_bookmark({"cursor": {"field": "id", "value": "3"}}, "public-orders", "updated_at") is None
    assert singer_bookmark(entry, "other-stream", "updated_at") is not None  # the cursor still says where
    assert singer_state_from_envelope(StateEnvelope(), {"orders": ("public-orders", "updated_at")}) == {}


def test_cursor_values_compare_as_numbers_or_instants():
    assert cursor_is_after("10", "9") and not cursor_is_after("9", "10")
    assert cursor_is_after("2024-01-02T00:00:00+00:00", "2024-01-01T23:00:00.000000+00:00")
    assert not cursor_is_after("2024-01-01T01:00:00+02:00", "2024-01-01T00:00:00Z")  # 23:00 the day before
    assert cursor_is_after("2024-01-01T00:00:01", "2024-01-01T00:00:00Z")
