#!/usr/bin/env python
"""Run ``dativo_ingest`` with wall-clock timers around its phases; print the breakdown to stderr.

    .venv/bin/python bench/phases.py run --config jobs/x.yaml --secrets-dir secrets

Same arguments as the CLI.  The timers wrap functions from outside (nothing in dativo_ingest/ changes):
imports, ``startup_sequence`` and its source / target checks, the source read (time spent inside the
source generator, i.e. fetching batches), ``Stage.add`` / ``Stage.drain`` (DuckDB cast + validation),
``IcebergSink.open`` / ``write`` (Parquet files) / ``commit``.  Used by ``bench/db.py --phases``; it
costs a few microseconds per batch, so its total matches an untimed run.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

STARTED = time.perf_counter()
TOTALS: dict[str, float] = defaultdict(float)
CPU: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)

# (label, module, attribute path). Generators are timed while they run, not while their consumer does.
TIMED = [
    ("startup_sequence", "dativo_ingest.startup", "startup_sequence"),
    ("  check_source (connect)", "dativo_ingest.startup", "check_source"),
    ("  check_target (catalog)", "dativo_ingest.startup", "check_target"),
    ("run: JobRun.execute", "dativo_ingest.run.job", "JobRun.execute"),
    ("  open_sink", "dativo_ingest.run.job", "open_sink"),
    ("  sink: IcebergSink.current_state", "dativo_ingest.sinks.iceberg.sink", "IcebergSink.current_state"),
    ("  runner: JobRun._on_batch (stage + write)", "dativo_ingest.run.job", "JobRun._on_batch"),
    ("  runner: JobRun._commit (drain + commit)", "dativo_ingest.run.job", "JobRun._commit"),
    ("  write_mirror", "dativo_ingest.run.job", "write_mirror"),
    ("  source: read_postgres (fetch)", "dativo_ingest.engines.native.sql.postgres", "read_postgres"),
    ("  source: read_sqlite (fetch)", "dativo_ingest.engines.native.sql.sqlite", "read_sqlite"),
    ("  source: read_mysql (fetch)", "dativo_ingest.engines.native.sql.mysql", "read_mysql"),
    ("  stage: Stage.__init__", "dativo_ingest.stage.stage", "Stage.__init__"),
    ("  stage: Stage.add (cast+validate)", "dativo_ingest.stage.stage", "Stage.add"),
    ("  stage: Stage.drain", "dativo_ingest.stage.stage", "Stage.drain"),
    ("  sink: IcebergSink.open", "dativo_ingest.sinks.iceberg.sink", "IcebergSink.open"),
    ("  sink: IcebergSink.write (parquet)", "dativo_ingest.sinks.iceberg.sink", "IcebergSink.write"),
    ("  sink: IcebergSink.commit", "dativo_ingest.sinks.iceberg.sink", "IcebergSink.commit"),
]


def _timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            CALLS[label] += 1
            it = fn(*args, **kwargs)
            while True:
                t, c = time.perf_counter(), time.process_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    TOTALS[label] += time.perf_counter() - t
                    CPU[label] += time.process_time() - c
                yield item

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        CALLS[label] += 1
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[label] += time.perf_counter() - t
            CPU[label] += time.process_time() - c

    return wrapper


def install() -> None:
    for label, module_name, attr in TIMED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner: Any = module
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            setattr(owner, name, _timed(label, getattr(owner, name)))


def report() -> None:
    wall, cpu = time.perf_counter() - STARTED, time.process_time()
    lines = [f"[phases] in-process (interpreter start-up not included): wall {wall:.2f}s, CPU {cpu:.2f}s "
             "(CPU of all the process's threads while the phase ran: steadier than wall on a busy machine)"]
    for label in ["imports", *(label for label, _, _ in TIMED)]:
        if CALLS.get(label):
            lines.append(f"  {label:<44} wall {TOTALS[label]:6.2f}s  CPU {CPU[label]:6.2f}s  ({CALLS[label]} call(s))")
    print("\n".join(lines), file=sys.stderr)


def main() -> int:
    t, c = time.perf_counter(), time.process_time()
    from dativo_ingest.cli import main as cli_main

    install()
    TOTALS["imports"] = time.perf_counter() - t
    CPU["imports"] = time.process_time() - c
    CALLS["imports"] = 1
    atexit.register(report)
    sys.argv = ["dativo_ingest", *sys.argv[1:]]
    cli_main()  # typer exits through SystemExit; the report runs at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
