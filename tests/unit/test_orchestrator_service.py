"""How `start orchestrated` stops its children: SIGINT to each process group, SIGKILL after a timeout."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dativo_ingest.errors import InfrastructureError
from dativo_ingest.orchestrator.service import Child, default_sigint, group_members, hold_home, stop_children


def _group(name: str, code: str) -> Child:
    """A process leading its own group, with a grandchild in the same group (as Dagster's code servers are)."""
    script = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {code!r}])\n{code}\n"
    return Child(name, subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                                        preexec_fn=default_sigint))


def _wait_for_members(child: Child, count: int) -> None:
    for _ in range(200):
        if len(group_members(child.pgid)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{child.name}: group never had {count} processes")


def test_sigint_to_the_group_stops_child_and_grandchild():
    child = _group("polite", "import time; time.sleep(60)")
    _wait_for_members(child, 2)
    assert stop_children([child], timeout=20) == []
    assert child.process.returncode is not None
    assert group_members(child.pgid) == []


def test_a_group_that_ignores_sigint_is_killed_after_the_timeout(tmp_path):
    code = ("import os, signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            f"open(os.path.join({str(tmp_path)!r}, str(os.getpid())), 'w').close(); time.sleep(60)")
    child = _group("stubborn", code)
    for _ in range(600):  # both processes ignore SIGINT from here on
        if len(list(tmp_path.iterdir())) == 2:
            break
        time.sleep(0.05)
    assert len(group_members(child.pgid)) == 2
    assert stop_children([child], timeout=1) == ["stubborn"]
    assert group_members(child.pgid) == []


def test_one_orchestrator_per_dagster_home(tmp_path):
    first = hold_home(tmp_path / "dagster")
    try:
        with pytest.raises(InfrastructureError, match=r"is in use by another dativo_ingest start orchestrated"):
            hold_home(tmp_path / "dagster")
    finally:
        first.close()
    hold_home(tmp_path / "dagster").close()  # free again once the first one stopped
