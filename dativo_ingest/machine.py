"""How many threads the run's engines use: one rule, sized to the machine (``DATIVO_THREADS`` overrides it)."""

from __future__ import annotations

import os

THREADS_ENV = "DATIVO_THREADS"
#: more threads than this buy a single run's DuckDB queries nothing measurable
MAX_THREADS = 8


def worker_threads() -> int:
    """Threads one DuckDB query (the stage, the dedup store, a merge plan…) may use: the cores this process may
    run on, at most ``MAX_THREADS``; ``DATIVO_THREADS`` (a positive integer) overrides it."""
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return max(1, min(cores, MAX_THREADS))


__all__ = ["MAX_THREADS", "THREADS_ENV", "worker_threads"]
