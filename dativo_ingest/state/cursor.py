"""The one rule for comparing cursor values, wherever they come from (state, a connector, a staged column).

Cursor values are kept in state as text (``cursor_to_text``) but arrive as numbers, ISO 8601 strings with any
UTC offset, or plain text. They are ordered:

- both numbers (or numeric text): as exact decimals (``"10" > "9"``; no float rounding of big integers);
- both ISO 8601 dates or date-times: as instants (``2024-01-01T01:00:00+02:00`` is before
  ``2024-01-01T00:00:00Z``); a value without an offset is UTC, a date alone is its midnight UTC;
- anything else (or a mix of kinds): as text.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER, _INSTANT, _TEXT = 0, 1, 2


def cursor_to_text(value: Any) -> str | None:
    """How a cursor value is kept in state: ISO 8601 for dates and times, ``str`` otherwise."""
    if value is None:
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _instant(text: str) -> datetime | None:
    text = text.strip()
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def cursor_key(value: Any) -> tuple[int, Any]:
    """``(kind, comparable)`` of one cursor value (see the module docstring)."""
    if isinstance(value, bool):
        return _TEXT, str(value)
    if isinstance(value, int | float | Decimal):
        return _NUMBER, Decimal(str(value))
    if isinstance(value, datetime):
        return _INSTANT, value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return _INSTANT, datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    text = str(value)
    try:
        number = Decimal(text.strip())
        if number.is_finite():
            return _NUMBER, number
    except InvalidOperation:
        pass
    instant = _instant(text)
    if instant is not None:
        return _INSTANT, instant
    return _TEXT, text


def compare_cursors(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is before, equal to or after ``b`` (neither may be None)."""
    ka, kb = cursor_key(a), cursor_key(b)
    if ka[0] != kb[0]:
        ta, tb = cursor_to_text(a) or "", cursor_to_text(b) or ""
        return (ta > tb) - (ta < tb)
    return (ka[1] > kb[1]) - (ka[1] < kb[1])


def cursor_after(value: Any, other: Any) -> bool:
    """``value > other``; a missing ``value`` is never after, anything is after a missing ``other``."""
    if value is None:
        return False
    if other is None:
        return True
    return compare_cursors(value, other) > 0


def cursor_not_behind(value: Any, other: Any) -> bool:
    """``value >= other``; anything is not behind a missing ``other``, a missing ``value`` is behind a value."""
    if other is None:
        return True
    if value is None:
        return False
    return compare_cursors(value, other) >= 0


__all__ = ["compare_cursors", "cursor_after", "cursor_key", "cursor_not_behind", "cursor_to_text"]
