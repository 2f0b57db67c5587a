"""Issue #12 class 13: a connector dies with the run that started it, and its private work folder (a tap's
config.json with the password) is removed at the next run's start at the latest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dativo_ingest.engines.common.workdir import make_workdir, sweep_stale, workdirs_root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_connector_is_killed_with_the_run_that_started_it(tmp_path: Path) -> None:
    tap = tmp_path / "tap.sh"
    tap.write_text("#!/bin/sh\necho started\nexec sleep 300\n")
    tap.chmod(0o755)
    pidfile = tmp_path / "child.pid"
    run = textwrap.dedent(f"""
        import os, sys, time
        os.environ["DATIVO_HOME"] = {str(tmp_path / "home")!r}
        from dativo_ingest.engines.launchers.local import LocalLauncher
        from dativo_ingest.engines.common.workdir import make_workdir
        work = make_workdir("singer")
        (work / "config.json").write_text('{{"password": "pw-123456789"}}')
        proc = LocalLauncher({str(tap)!r}).start([], workdir=work)
        next(proc.lines())
        open({str(pidfile)!r}, "w").write(f"{{proc.popen.pid}} {{work}}")
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", run], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child, work = pidfile.read_text().split(" ", 1)
    assert _alive(int(child))
    parent.send_signal(signal.SIGKILL)  # the run is killed: it cannot stop its connector itself
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(int(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(child)), "the connector outlived the run that started it"
    assert Path(work, "config.json").exists()  # left behind by the kill ...
    os.environ["DATIVO_HOME"] = str(tmp_path / "home")
    try:
        fresh = make_workdir("airbyte")  # ... and gone when the next run starts a connector
    finally:
        del os.environ["DATIVO_HOME"]
    assert not Path(work).exists() and fresh.is_dir()


def test_only_the_folders_of_dead_processes_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path))
    mine = make_workdir("singer")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = workdirs_root() / f"singer-{dead.pid}-abc"
    stale.mkdir()
    other = workdirs_root() / "notes"  # not a work folder: never touched
    other.mkdir()
    assert sweep_stale() == 1
    assert mine.is_dir() and other.is_dir() and not stale.exists()
    assert oct(mine.stat().st_mode & 0o777) == "0o700"
