"""Incremental settings shared by the runner and the sources."""

from __future__ import annotations

from typing import Any

from dativo_ingest.errors import ConfigError

#: ``source.incremental.strategy`` values that mean "read everything every run"
FULL_REFRESH_STRATEGIES = frozenset({"none", "full_refresh", "full"})


def lookback_seconds(incremental: dict[str, Any]) -> int:
    """``lookback_days`` and/or ``lookback`` (``30m``, ``2h``, ``1d``, ``1w``, seconds), in seconds; larger wins."""
    seconds = int(float(incremental.get("lookback_days") or 0) * 86400)
    text = str(incremental.get("lookback") or "").strip().lower()
    if text:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
        try:
            seconds = max(seconds, int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text))
        except (ValueError, KeyError):
            raise ConfigError(None, f"cannot read lookback '{text}'", field="source.incremental.lookback",
                              fix="use a duration like 30m, 2h, 1d") from None
    return seconds
