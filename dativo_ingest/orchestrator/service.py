"""``dativo_ingest start orchestrated``: a real Dagster daemon (+ webserver) on 127.0.0.1, stopped cleanly.

Each Dagster process starts in its own session (``setsid``), so its code servers and run workers share its
process group and the terminal's Ctrl-C reaches only us. On Ctrl-C, SIGTERM or SIGHUP we send SIGINT to
each group (Dagster shuts down on SIGINT; it may ignore SIGTERM), wait for the groups to empty, and
SIGKILL what is left after ``STOP_TIMEOUT`` seconds. Nothing is left running.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dativo_ingest.errors import EXIT_FAILURE, EXIT_OK, DativoError, InfrastructureError
from dativo_ingest.logs import redact
from dativo_ingest.orchestrator.config import Runner, load_runner
from dativo_ingest.paths import dativo_home

HOST = "127.0.0.1"
STOP_TIMEOUT = 30.0
READY_TIMEOUT = 120.0
Echo = Callable[[str], None]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session: the child leads its own group


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether anything is left
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_children(children: list[Child], timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGINT every group, wait for all of them to empty, SIGKILL after ``timeout``; names of groups killed."""
    for child in children:
        _signal_group(child.pgid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    killed: list[str] = []
    for child in children:
        while time.monotonic() < deadline and (child.process.poll() is None or group_members(child.pgid)):
            time.sleep(0.2)
        if child.process.poll() is None or group_members(child.pgid):
            _signal_group(child.pgid, signal.SIGKILL)
            killed.append(child.name)
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        gone = time.monotonic() + 5  # a killed grandchild leaves the group a moment after the kill
        while group_members(child.pgid) and time.monotonic() < gone:
            time.sleep(0.05)
    return killed


def default_sigint() -> None:
    """For ``preexec_fn``: a child takes SIGINT as its default again, even when this process was started with
    SIGINT ignored (as a shell's background job is), so ``stop_children``'s SIGINT stops it politely."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def location_status(url: str, location: str) -> tuple[str | None, str | None]:
    """``(loadStatus, load error)`` of a code location as the webserver sees it; ``(None, None)`` if it does
    not answer yet. The webserver answers before it has loaded the code: runs can be launched once LOADED."""
    request = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": _LOCATIONS_QUERY}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own server
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None, None
    workspace = (body.get("data") or {}).get("workspaceOrError") or {}
    for entry in workspace.get("locationEntries") or []:
        if entry.get("name") == location:
            loaded = entry.get("locationOrLoadError") or {}
            error = loaded.get("message") if loaded.get("__typename") == "PythonError" else None
            return entry.get("loadStatus"), error
    return None, None


def child_env(runner: Runner) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DAGSTER_HOME": str(runner.runs_dir),
        "DATIVO_RUNNER_CONFIG": str(runner.path.resolve()),
        "DATIVO_HOME": str(dativo_home()),
        "PYICEBERG_DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE": env.get("PYICEBERG_DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE",
                                                                  "true"),
    })
    return env


def _describe(runner: Runner, echo: Echo) -> list[str]:
    """Validate the definitions as the code server will load them; print the schedules; return the tenants."""
    from dativo_ingest.orchestrator.build import build_definitions, job_specs, load_plans
    from dativo_ingest.run.pool import prepare_targets

    plans = load_plans(runner)
    build_definitions(runner, plans)
    specs = job_specs(runner, plans)
    prepare_targets(list(plans.values()))  # runs of several jobs may start together on a fresh catalog
    for resolved in runner.schedules:
        entry = resolved.entry
        keys = ", ".join(f"{specs[p].tenant_id}/{specs[p].table}" for p in resolved.job_files)
        state = "on" if entry.enabled else "off"
        echo(f"  schedule {entry.name} [{state}]: {entry.cron_schedule} ({entry.timezone}) → {keys}")
    return sorted({spec.tenant_id for spec in specs.values()})


def hold_home(home: Path) -> IO[str]:
    """Lock Dagster's home for this process: two orchestrators on one home would run every schedule twice."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / ".dativo-orchestrated.lock", "a+", encoding="utf-8")  # noqa: SIM115 - held until stop
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        other = handle.read().strip() or "?"
        handle.close()
        raise InfrastructureError(f"{home} is in use by another dativo_ingest start orchestrated (pid {other}); "
                                  f"stop it, or give this runner file another runs_dir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class _StopFlag:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.signal = signum
        self.event.set()


def start_orchestrated(runner_path: Path, *, port: int = 3000, ui: bool = True, echo: Echo = print,
                       stop_timeout: float = STOP_TIMEOUT) -> int:
    """Run Dagster for this runner file until a signal arrives or a Dagster process dies; return an exit code."""
    from dativo_ingest.orchestrator.instance import CODE_LOCATION, init_storage, write_instance

    for module in ("dagster", "dagster_webserver"):
        if importlib.util.find_spec(module) is None:
            raise DativoError(f"orchestrated mode needs {module.replace('_', '-')}: "
                              f"pip install 'dativo-ingest[orchestrated]'")
    runner = load_runner(runner_path)
    echo(f"dativo_ingest orchestrated mode: {runner.path}")
    tenants = _describe(runner, echo)
    if ui and not _port_free(port):
        raise InfrastructureError(f"{HOST}:{port} is already in use (choose another port with --port)")
    lock = hold_home(runner.runs_dir)
    stop = _StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    children: list[Child] = []
    try:
        _, workspace = write_instance(runner, tenants)
        init_storage(runner.runs_dir)
        env = child_env(runner)
        commands = [("dagster-daemon", [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)])]
        if ui:
            commands.append(("dagster-webserver", [sys.executable, "-m", "dagster_webserver", "-h", HOST,
                                                   "-p", str(port), "-w", str(workspace)]))
        for name, argv in commands:
            process = subprocess.Popen(argv, cwd=runner.project_root, env=env, stdin=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=default_sigint)
            children.append(Child(name, process))
        echo(f"DAGSTER_HOME={runner.runs_dir} (code location '{CODE_LOCATION}'); "
             + ", ".join(f"{c.name} pid {c.process.pid}" for c in children))
        url = f"http://{HOST}:{port}"
        if ui:
            echo(f"Dagster UI: {url} (starting…; Ctrl-C stops everything)")
        else:
            echo("no UI (--no-ui): the daemon runs the schedules; Ctrl-C stops everything")
        ready = not ui
        deadline = time.monotonic() + READY_TIMEOUT
        while not stop.event.is_set():
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                echo(f"ERROR: {dead[0].name} exited with code {dead[0].process.returncode}; stopping "
                     f"(see its output above)")
                return EXIT_FAILURE
            if not ready:
                status, error = location_status(url, CODE_LOCATION)
                if status == "LOADED":
                    ready = True
                    if error:
                        echo(f"ERROR: the code location did not load: {redact(error.splitlines()[0])} "
                             f"(fix it, then reload it in the UI)")
                    else:
                        echo(f"ready: {url}")
                elif time.monotonic() > deadline:
                    echo(f"ERROR: the webserver did not load the jobs within {READY_TIMEOUT:.0f}s; stopping")
                    return EXIT_FAILURE
            stop.event.wait(0.5)
        echo(f"stopping ({signal.Signals(stop.signal).name if stop.signal else 'stop'}): "
             f"SIGINT to the Dagster process groups")
        return EXIT_OK
    finally:
        killed = stop_children(children, timeout=stop_timeout)
        if killed:
            echo(f"killed (did not stop within {stop_timeout:.0f}s): {', '.join(killed)}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.close()
        if children:
            echo("stopped")


__all__ = ["group_members", "start_orchestrated", "stop_children"]
