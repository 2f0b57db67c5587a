"""``rate_limits: {requests_per_second, burst_size}`` of a recipe: one token bucket per tenant and connector.

The bucket (pyrate-limiter's token bucket, GCRA) lives for the process, so every stream of a run — and every
job of the same tenant and connector in a ``run --job-dir`` pool (threads) — draws from the same budget.
``burst_size`` is how many requests may go at once after a quiet spell (default 1: evenly spaced).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pyrate_limiter import Limiter, Rate, StateBucket, TokenBucket

from dativo_ingest.errors import ConfigError

_LOCK = threading.Lock()
_LIMITERS: dict[tuple[str, str, float, int], Limiter] = {}


class RateLimit:
    """Blocks until the next request of this tenant and connector may go."""

    def __init__(self, limiter: Limiter | None, key: str) -> None:
        self.limiter = limiter
        self.key = key

    def wait(self) -> None:
        """Take one token, sleeping until there is one."""
        if self.limiter is not None:
            self.limiter.try_acquire(self.key)


def _number(value: Any, field: str, recipe_path: Path | str | None, *, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(recipe_path, f"must be a positive {'whole ' if integer else ''}number", field=field,
                          fix="e.g. rate_limits: {requests_per_second: 10, burst_size: 20}")
    if integer and int(value) != value:
        raise ConfigError(recipe_path, "must be a whole number", field=field, fix="e.g. burst_size: 20")
    return float(value)


def rate_limit(tenant_id: str, connector: str, rate_limits: dict[str, Any] | None,
               recipe_path: Path | str | None) -> RateLimit:
    """The shared limiter of ``(tenant, connector)``; none when the recipe sets no ``requests_per_second``."""
    limits = dict(rate_limits or {})
    unknown = set(limits) - {"requests_per_second", "burst_size"}
    if unknown:
        raise ConfigError(recipe_path, f"unknown key '{sorted(unknown)[0]}'", field="rate_limits",
                          fix="use requests_per_second and burst_size")
    key = f"{tenant_id}/{connector}"
    if limits.get("requests_per_second") is None:
        return RateLimit(None, key)
    rps = _number(limits["requests_per_second"], "rate_limits.requests_per_second", recipe_path, integer=False)
    burst = int(_number(limits.get("burst_size", 1), "rate_limits.burst_size", recipe_path, integer=True))
    ident = (tenant_id, connector, rps, burst)
    with _LOCK:
        limiter = _LIMITERS.get(ident)
        if limiter is None:
            # emission interval 1/rps: limit `per` in a 1000 s window keeps fractional rates exact
            rate = Rate(max(1, round(rps * 1000)), 1000 * 1000, burst=burst)
            limiter = Limiter(StateBucket([rate], algorithm=TokenBucket()), buffer_ms=0)
            _LIMITERS[ident] = limiter
    return RateLimit(limiter, key)
