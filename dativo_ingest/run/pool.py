"""Run several job plans at once: a bounded pool of worker threads that respects a per-tenant limit.

Every job runs through ``run_job`` exactly as ``dativo_ingest run --config`` runs it; the heavy work (CSV
and database reads, DuckDB, Parquet writes) releases the GIL, so threads run jobs in parallel. A job is
started only when a worker is free and its tenant has fewer than ``tenant_limit(tenant)`` jobs running.

Ctrl-C stops cleanly: jobs not started are reported ``cancelled``; running jobs stop at their next batch
(the progress hook raises ``KeyboardInterrupt`` inside them; the runner aborts: nothing more is committed).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.errors import EXIT_FAILURE
from dativo_ingest.logs import console
from dativo_ingest.run.dispatch import run_job
from dativo_ingest.run.job import RunResult
from dativo_ingest.sinks.factory import open_sink
from dativo_ingest.sinks.layout import table_identifier

log = logging.getLogger("dativo_ingest")

TenantLimit = Callable[[str], int]
#: the signals that stop a run cleanly, as Ctrl-C does
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Outcome:
    """What became of one plan: a result, or the error it raised, or ``cancelled``."""

    plan: JobPlan
    result: RunResult | None = None
    error: BaseException | None = None
    cancelled: bool = False


class PoolProgress:
    """Rows and rows/s per job: one live display on a TTY (a line per running job), else a JSON log line
    per job every few seconds. Raises ``KeyboardInterrupt`` inside a job once the pool is interrupted."""

    def __init__(self, live: bool, interrupted: threading.Event) -> None:
        self.interrupted = interrupted
        self.display: Any = None
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()
        if live:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.display = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                    transient=True, console=console())
            self.display.start()

    def for_job(self, job: str) -> Callable[[str, int], None]:
        started = time.monotonic()
        last_log = [started]
        with self.lock:
            if self.display is not None:
                self.tasks[job] = self.display.add_task(job, total=None)

        def report(stream: str, rows: int) -> None:
            if self.interrupted.is_set():
                raise KeyboardInterrupt
            now = time.monotonic()
            rate = rows / max(now - started, 1e-6)
            if self.display is not None:
                text = f"{job} · {stream}: {rows:,} rows · {rate:,.0f} rows/s"
                self.display.update(self.tasks[job], description=text)
            elif now - last_log[0] >= 5:
                last_log[0] = now
                log.info("progress", extra={"job": job, "stream": stream, "rows": rows, "rows_per_s": round(rate)})

        return report

    def done(self, job: str) -> None:
        with self.lock:
            task = self.tasks.pop(job, None)
            if task is not None and self.display is not None:
                self.display.remove_task(task)

    def close(self) -> None:
        if self.display is not None:
            self.display.stop()


def prepare_targets(plans: list[JobPlan]) -> None:
    """Let each job's sink create, one job at a time, what jobs starting side by side would race to create.

    pyiceberg's ``SqlCatalog`` creates its tables on first use and a namespace on first write without
    guarding against a concurrent first use, so two jobs starting together on a fresh catalog collide.
    Best effort: a target that cannot be prepared here fails its jobs with their own error."""
    for plan in plans:
        try:
            with open_sink(plan) as sink:
                sink.prepare()
        except Exception as exc:  # noqa: BLE001 - the job reports the real error
            log.debug("could not prepare the target of %s: %s", plan.job_name, type(exc).__name__)


def run_plans(
    plans: list[JobPlan],
    *,
    workers: int = 2,
    tenant_limit: TenantLimit | None = None,
    live: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run ``plans`` with at most ``workers`` at once and at most ``tenant_limit(t)`` of tenant ``t``; jobs that
    write the same table run one after the other, in the order given (side by side, the later commit would have
    to be refused or re-applied over the other's).

    Returns one ``Outcome`` per plan, in the order of ``plans``. ``on_done`` is called (in this thread)
    as each job finishes. On Ctrl-C (SIGINT) or SIGTERM (what Kubernetes, Dagster and systemd send), when called
    from the main thread, the running jobs stop at their next batch (nothing of their open commit is written,
    their files are deleted) and the rest are cancelled; a second signal while waiting for them is raised."""
    workers = max(1, int(workers))
    outcomes = [Outcome(plan) for plan in plans]
    pending = list(range(len(plans)))
    running: dict[Future[RunResult], int] = {}
    active: Counter[str] = Counter()
    busy: set[str] = set()  # the tables a running job writes
    interrupted = threading.Event()
    progress = PoolProgress(live, interrupted)

    def limit(tenant: str) -> int:
        return max(1, tenant_limit(tenant)) if tenant_limit else workers

    def execute(index: int) -> RunResult:
        plan = plans[index]
        try:
            return run_job(plan, progress=progress.for_job(plan.job_name))
        finally:
            progress.done(plan.job_name)

    def finish(future: Future[RunResult]) -> None:
        index = running.pop(future)
        outcome = outcomes[index]
        active[outcome.plan.tenant_id] -= 1
        busy.discard(table_identifier(outcome.plan))
        try:
            outcome.result = future.result()
        except BaseException as exc:  # noqa: BLE001 - reported per job
            outcome.error = exc
        if on_done is not None:
            on_done(outcome)

    def on_sigint(_signum: int, _frame: Any) -> None:
        if interrupted.is_set():  # a second Ctrl-C: stop waiting
            raise KeyboardInterrupt
        interrupted.set()

    if workers > 1 and len(plans) > 1:
        prepare_targets(plans)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_sigint) for sig in STOP_SIGNALS} if in_main else {}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dativo-job")
    warned = False
    try:
        while pending or running:
            if not interrupted.is_set():
                for index in list(pending):
                    if len(running) >= workers:
                        break
                    tenant, table = plans[index].tenant_id, table_identifier(plans[index])
                    if active[tenant] < limit(tenant) and table not in busy:
                        pending.remove(index)
                        active[tenant] += 1
                        busy.add(table)
                        running[pool.submit(execute, index)] = index
            elif not warned:
                warned = True
                log.warning("interrupted: stopping %d running job(s), %d not started", len(running), len(pending))
            if not running:
                break
            done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                finish(future)
        for index in pending:
            outcomes[index].cancelled = True
            if on_done is not None:
                on_done(outcomes[index])
    finally:
        interrupted.set()  # whatever ends this (even an error), running jobs stop at their next batch
        pool.shutdown(wait=True, cancel_futures=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
    return outcomes




def outcome_exit_code(outcome: Outcome) -> int:
    if outcome.result is not None:
        return outcome.result.exit_code
    return int(getattr(outcome.error, "exit_code", EXIT_FAILURE))


def outcome_summary(outcome: Outcome) -> dict[str, Any]:
    """The summary line of one job: the run's summary and ``status`` ok|partial, or failed|interrupted|cancelled."""
    if outcome.result is not None:
        summary = outcome.result.summary()
        summary["status"] = "partial" if outcome.result.exit_code else "ok"
        return summary
    status = ("cancelled" if outcome.cancelled else
              "interrupted" if isinstance(outcome.error, KeyboardInterrupt) else "failed")
    return {"job": outcome.plan.job_name, "table": table_identifier(outcome.plan), "status": status,
            "exit_code": outcome_exit_code(outcome)}


__all__ = ["Outcome", "outcome_exit_code", "outcome_summary", "prepare_targets", "run_plans"]
