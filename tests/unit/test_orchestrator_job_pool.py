"""The worker pool of ``run --job-dir``: bounded, per-tenant limits, results in order, clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from dativo_ingest.errors import SourceError
from dativo_ingest.run import pool as job_pool
from dativo_ingest.run.job import RunResult
from dativo_ingest.run.pool import outcome_exit_code, outcome_summary, run_plans


def _plan(name: str, tenant: str = "acme", table: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(job_name=name, tenant_id=tenant, asset=SimpleNamespace(name=table or name), target={})


class Recorder:
    """Stands in for ``run_job``: records how many jobs run at once, per tenant and in all."""

    def __init__(self, meet: dict[str, threading.Barrier] | None = None) -> None:
        self.lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_all = 0
        self.meet = meet or {}

    def __call__(self, plan, *, progress=None) -> RunResult:
        with self.lock:
            self.active[plan.tenant_id] = self.active.get(plan.tenant_id, 0) + 1
            self.peak[plan.tenant_id] = max(self.peak.get(plan.tenant_id, 0), self.active[plan.tenant_id])
            self.peak_all = max(self.peak_all, sum(self.active.values()))
        try:
            if plan.job_name in self.meet:  # these jobs must be running at the same time, or this times out
                self.meet[plan.job_name].wait(timeout=10)
            if plan.job_name.startswith("fail"):
                raise SourceError(f"{plan.job_name}: cannot read")
            progress("s", 1)
            return RunResult(plan.job_name, plan.tenant_id, f"{plan.tenant_id}.{plan.job_name}", "r", rows_written=1)
        finally:
            with self.lock:
                self.active[plan.tenant_id] -= 1


def test_workers_run_jobs_side_by_side_and_results_keep_the_order(monkeypatch):
    both = threading.Barrier(2)
    recorder = Recorder(meet={"a": both, "b": both})
    monkeypatch.setattr(job_pool, "run_job", recorder)
    plans = [_plan("a"), _plan("b"), _plan("c"), _plan("d")]
    outcomes = run_plans(plans, workers=2)
    assert [o.plan.job_name for o in outcomes] == ["a", "b", "c", "d"]
    assert all(o.result is not None and o.error is None for o in outcomes)
    assert recorder.peak_all == 2
    assert [outcome_summary(o)["status"] for o in outcomes] == ["ok"] * 4


def test_a_tenant_never_exceeds_its_limit(monkeypatch):
    both = threading.Barrier(2)  # one acme job and the globex job meet: other tenants are not held back
    recorder = Recorder(meet={"a1": both, "g1": both})
    monkeypatch.setattr(job_pool, "run_job", recorder)
    plans = [_plan("a1"), _plan("a2"), _plan("a3"), _plan("g1", "globex")]
    limits = {"acme": 1, "globex": 2}
    outcomes = run_plans(plans, workers=3, tenant_limit=limits.__getitem__)
    assert recorder.peak["acme"] == 1 and recorder.peak_all <= 2
    assert [o.result.table for o in outcomes] == ["acme.a1", "acme.a2", "acme.a3", "globex.g1"]


def test_jobs_writing_one_table_run_one_after_the_other(monkeypatch):
    both = threading.Barrier(2)  # x1 and the other table's job meet: only the second x job waits
    order: list[str] = []
    recorder = Recorder(meet={"x1": both, "y": both})

    def run(plan, *, progress=None):
        order.append(f"start {plan.job_name}")
        try:
            return recorder(plan, progress=progress)
        finally:
            order.append(f"end {plan.job_name}")

    monkeypatch.setattr(job_pool, "run_job", run)
    plans = [_plan("x1", table="shared"), _plan("x2", table="shared"), _plan("y")]
    outcomes = run_plans(plans, workers=3)
    assert all(o.error is None for o in outcomes)
    assert order.index("end x1") < order.index("start x2")  # never side by side
    assert recorder.peak_all == 2


def test_a_failing_job_does_not_stop_the_others(monkeypatch):
    monkeypatch.setattr(job_pool, "run_job", Recorder())
    done = []
    outcomes = run_plans([_plan("a"), _plan("fail_b"), _plan("c")], workers=2,
                         on_done=lambda o: done.append(o.plan.job_name))
    assert sorted(done) == ["a", "c", "fail_b"]
    assert isinstance(outcomes[1].error, SourceError)
    assert [outcome_exit_code(o) for o in outcomes] == [0, 2, 0]
    assert outcome_summary(outcomes[1]) == {"job": "fail_b", "table": "acme.fail_b", "status": "failed",
                                            "exit_code": 2}


def test_ctrl_c_stops_the_running_job_at_its_next_batch_and_cancels_the_rest(monkeypatch):
    def endless(plan, *, progress=None):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives in the main thread, which waits for us
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a long read: one batch after another
            progress("s", 1)
            time.sleep(0.01)
        raise AssertionError("the pool did not stop the job")

    monkeypatch.setattr(job_pool, "run_job", endless)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's KeyboardInterrupt here")
    outcomes = run_plans([_plan("a"), _plan("b"), _plan("c")], workers=1)
    assert isinstance(outcomes[0].error, KeyboardInterrupt)
    assert [outcome_summary(o)["status"] for o in outcomes] == ["interrupted", "cancelled", "cancelled"]
    assert all(outcome_exit_code(o) == 2 for o in outcomes)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
