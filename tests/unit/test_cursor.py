"""One cursor comparison for every engine and sink (state/cursor.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dativo_ingest.state.cursor import compare_cursors, cursor_after, cursor_not_behind, cursor_to_text


@pytest.mark.parametrize(("later", "earlier"), [
    ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00+02:00"),            # 00:00 UTC is after 23:00 UTC the day before
    ("2024-01-01T00:30:00-01:00", "2024-01-01T01:00:00+00:00"),       # 01:30 UTC vs 01:00 UTC
    ("2024-01-01T10:00:00+05:30", "2024-01-01T04:29:59.999999Z"),
    ("2024-01-01T00:00:01", "2024-01-01T00:00:00Z"),                  # no offset: UTC
    ("2024-01-02", "2024-01-01T23:59:59+00:00"),                      # a date is its midnight UTC
    ("10", "9"),                                                       # numbers as numbers, not text
    ("9007199254740993", "9007199254740992"),                          # exact: no float rounding
    ("1e3", "999.5"),
    ("banana", "apple"),                                               # text as text
])
def test_later_values_are_after(later: str, earlier: str) -> None:
    assert cursor_after(later, earlier) and not cursor_after(earlier, later)
    assert cursor_not_behind(later, earlier) and not cursor_not_behind(earlier, later)
    assert compare_cursors(later, earlier) == 1 and compare_cursors(earlier, later) == -1


def test_the_same_instant_in_two_offsets_is_equal() -> None:
    a, b = "2024-03-01T12:00:00+01:00", "2024-03-01T11:00:00Z"
    assert compare_cursors(a, b) == 0 and not cursor_after(a, b) and cursor_not_behind(a, b)


def test_typed_values_compare_with_their_text_form() -> None:
    utc = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    assert compare_cursors(utc, "2024-01-01T13:00:00+01:00") == 0
    assert cursor_after(utc + timedelta(microseconds=1), cursor_to_text(utc))
    assert cursor_after(date(2024, 1, 2), "2024-01-01T12:00:00Z")
    assert cursor_after(11, "10.5") and compare_cursors(10, "10.0") == 0


def test_missing_values() -> None:
    assert cursor_after("1", None) and not cursor_after(None, "1") and not cursor_after(None, None)
    assert cursor_not_behind("1", None) and not cursor_not_behind(None, "1")


def test_state_text_round_trips() -> None:
    ts = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    assert cursor_to_text(ts) == "2024-05-06T07:08:09.123456+00:00"
    assert compare_cursors(cursor_to_text(ts), ts) == 0
    assert cursor_to_text(None) is None and cursor_to_text(5) == "5"
