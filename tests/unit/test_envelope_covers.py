"""StateEnvelope.uncovered/covers: the one 're-apply over another writer' rule every sink applies."""

from __future__ import annotations

from dativo_ingest.state.envelope import StateEnvelope


def _env(streams: dict, shared: dict | None = None) -> StateEnvelope:
    return StateEnvelope(streams=streams, shared=shared or {})


def _cursor(value: str, field: str = "updated_at") -> dict:
    return {"cursor": {"field": field, "value": value}}


def test_a_cursor_not_behind_covers_across_utc_offsets() -> None:
    base = _env({"o": _cursor("2024-01-01T00:00:00Z")})
    theirs = _env({"o": _cursor("2024-01-01T12:00:00+02:00")})   # 10:00 UTC
    ours = _env({"o": _cursor("2024-01-01T11:00:00+00:00")})     # 11:00 UTC: later, though its text sorts lower
    assert ours.covers(theirs, base)
    assert theirs.uncovered(ours, base) == "its state of stream 'o' is behind or beside the other run's"


def test_another_cursor_field_or_changed_shared_state_does_not_cover() -> None:
    base = _env({"o": _cursor("1", "id")})
    assert not _env({"o": _cursor("9", "id")}).covers(_env({"o": _cursor("2", "version")}), base)
    assert _env({}, {"x": 1}).uncovered(_env({}, {"x": 2}), _env({}, {"x": 0})) == \
        "the other commit changed the shared state"


def test_files_they_recorded_must_be_recorded_alike() -> None:
    base = _env({})
    theirs = _env({"f": {"files": {"a.csv": {"mtime": 1}}}})
    assert _env({"f": {"files": {"a.csv": {"mtime": 1}, "b.csv": {"mtime": 2}}}}).covers(theirs, base)
    assert not _env({"f": {"files": {"b.csv": {"mtime": 2}}}}).covers(theirs, base)


def test_an_untouched_stream_or_no_other_state_is_covered() -> None:
    base = _env({"o": _cursor("5", "id")})
    assert _env({"o": _cursor("6", "id")}).covers(base, base)
    assert _env({"o": _cursor("6", "id")}).covers(None, None)
