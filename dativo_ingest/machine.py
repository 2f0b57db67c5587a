"""How many threads the run's engines use: one rule, sized to the machine (``DATIVO_THREADS`` overrides it); and
the one way a run opens a DuckDB connection with it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

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


def duckdb_connection(*, memory_limit: str | None = None, spill_dir: str | Path | None = None,
                      ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection of ``worker_threads()`` threads that reads zoneless date-times as UTC (as the stage does),
    within ``memory_limit`` and spilling under ``spill_dir`` when given. DuckDB is imported here, on first use."""
    import duckdb

    from dativo_ingest.sqltext import quote_literal

    config: dict[str, str | int] = {"threads": worker_threads()}
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(config=config)
    try:
        con.execute("SET TimeZone='UTC'")
        if spill_dir:
            con.execute(f"SET temp_directory={quote_literal(str(spill_dir))}")
    except BaseException:
        con.close()
        raise
    return con


__all__ = ["MAX_THREADS", "THREADS_ENV", "duckdb_connection", "worker_threads"]
