"""``dativo_ingest start orchestrated`` as a user runs it: a real Dagster daemon and webserver, a run launched
through GraphQL, the Iceberg table checked, then a clean stop that leaves no process behind; and
``run --job-dir --workers``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from dativo_ingest.orchestrator.service import group_members
from tests.acceptance.helpers import catalog, cli, table_rows
from tests.unit.test_orchestrator_definitions import DEMO_JOB, SECOND_JOB, orchestrator_project

START_TIMEOUT = 90
RUN_TIMEOUT = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Orchestrated:
    """``dativo_ingest start orchestrated`` in its own session, as a terminal would run it."""

    def __init__(self, runner: Path, home: Path, *args: str) -> None:
        self.log = home.parent / "orchestrated.log"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATIVO_", "DAGSTER_"))}
        env["DATIVO_HOME"] = str(home)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dativo_ingest", "start", "orchestrated", "--runner-config", str(runner),
                 *args], cwd=runner.parents[1], env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.seen: dict[int, str] = {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"exited {self.process.returncode}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no '{text}' within {timeout}s:\n{self.output()[-3000:]}"
            time.sleep(0.5)

    def remember_descendants(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        for child in children:
            try:
                self.seen[child.pid] = " ".join(child.cmdline()[:6])
            except psutil.Error:
                pass
        return children

    def groups(self) -> set[int]:
        groups = {self.process.pid}
        for pid in self.seen:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                pass
        return groups

    def left_behind(self) -> list[str]:
        alive = []
        for pid, cmd in self.seen.items():
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {cmd}")
            except psutil.NoSuchProcess:
                pass
        return alive

    def kill_all(self) -> None:
        """Safety net for a failing test: nothing of ours may outlive it."""
        groups = self.groups()
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _launch_and_wait(port: int, job: str) -> str:
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution(job, repository_location_name="dativo", repository_name="__repository__")
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return run_id if status == "SUCCESS" else pytest.fail(f"run {run_id} ended {status}")
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {RUN_TIMEOUT}s"
        time.sleep(0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # gql, inside dagster_graphql's client
def test_start_orchestrated_runs_the_demo_job_through_dagster_and_stops_cleanly(tmp_path):
    from dagster import AssetKey, DagsterInstance

    runner = orchestrator_project(tmp_path / "p", [
        {"name": "employees", "config": DEMO_JOB, "every": "1d", "tags": {"team": "hr"}},
        {"name": "people", "config": SECOND_JOB, "cron": "0 3 * * *", "enabled": False},
    ])
    home = tmp_path / "home"
    port = _free_port()
    orchestrated = Orchestrated(runner, home, "--port", str(port))
    try:
        orchestrated.wait_for("ready: http://127.0.0.1:")
        out = orchestrated.output()
        assert f"Dagster UI: http://127.0.0.1:{port}" in out
        assert "schedule employees [on]: 0 0 * * * (UTC) → acme/csv_employee" in out
        assert "schedule people [off]: 0 3 * * * (UTC) → acme/csv_people" in out
        orchestrated.remember_descendants()
        names = " ".join(orchestrated.seen.values())
        assert "dagster._daemon" in names and "dagster_webserver" in names

        run_id = _launch_and_wait(port, "employees")
        orchestrated.remember_descendants()
        rows = table_rows(home, "acme.csv_employee")
        assert rows is not None and rows.num_rows == 20
        assert sorted(rows.column("employee_id").to_pylist()) == list(range(1001, 1021))
        assert table_rows(home, "acme.csv_people") is None  # the other schedule's job did not run

        orchestrated.process.send_signal(signal.SIGTERM)
        assert orchestrated.process.wait(timeout=60) == 0, orchestrated.output()[-3000:]
        assert "stopping (SIGTERM)" in orchestrated.output() and "killed" not in orchestrated.output()
        assert orchestrated.left_behind() == []
        assert all(group_members(g) == [] for g in orchestrated.groups())
    finally:
        orchestrated.kill_all()

    instance = DagsterInstance.from_config(str(home / "dagster"))  # the run's record, read after the stop
    try:
        run = instance.get_run_by_id(run_id)
        assert run.tags["dativo/tenant"] == "acme" and run.tags["team"] == "hr"
        event = instance.get_latest_materialization_event(AssetKey(["acme", "csv_employee"]))
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    finally:
        instance.dispose()
    assert event.run_id == run_id
    assert meta["rows_written"] == 20
    assert meta["snapshot_id"] == catalog(home).load_table("acme.csv_employee").current_snapshot().snapshot_id
    assert meta["state"]["streams"]["employees"]["files"]
    concurrency = yaml.safe_load((home / "dagster" / "dagster.yaml").read_text())["concurrency"]["runs"]
    assert concurrency["tag_concurrency_limits"][0]["key"] == "dativo/tenant"


def test_ctrl_c_stops_the_daemon_without_ui_and_leaves_nothing(tmp_path):
    runner = orchestrator_project(tmp_path / "p")
    orchestrated = Orchestrated(runner, tmp_path / "home", "--no-ui")
    try:
        orchestrated.wait_for("no UI (--no-ui)")
        deadline = time.monotonic() + START_TIMEOUT
        while not any("grpc" in cmd for cmd in orchestrated.seen.values()):  # the daemon loaded the code
            orchestrated.remember_descendants()
            assert time.monotonic() < deadline, orchestrated.output()[-3000:]
            time.sleep(0.5)
        assert not any("dagster_webserver" in cmd for cmd in orchestrated.seen.values())
        os.killpg(orchestrated.process.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        assert orchestrated.process.wait(timeout=60) == 0, orchestrated.output()[-3000:]
        assert "stopping (SIGINT)" in orchestrated.output()
        assert orchestrated.left_behind() == []
        assert all(group_members(g) == [] for g in orchestrated.groups())
    finally:
        orchestrated.kill_all()


def test_start_errors_are_one_line_and_start_nothing(tmp_path):
    runner = orchestrator_project(tmp_path / "p")
    project = runner.parents[1]
    v1 = project / "configs" / "v1.yaml"
    v1.write_text(yaml.safe_dump({"runner": {"mode": "orchestrated", "orchestrator": {"schedules": []}}}))
    out = cli("start", "orchestrated", "--runner-config", str(v1), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and out.stderr.strip() == (
        f"ERROR: {v1}: runner: is the dativo v1 layout (runner.orchestrator.schedules) (move schedules and "
        "concurrency_per_tenant to the top level, as in configs/runner.yaml)")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = cli("start", "orchestrated", "--runner-config", str(runner), "--port", str(port), cwd=project,
                  home=tmp_path / "home")
    assert out.returncode == 2
    assert out.stderr.strip() == f"ERROR: 127.0.0.1:{port} is already in use (choose another port with --port)"
    assert not (tmp_path / "home" / "dagster").exists()


def test_run_job_dir_with_workers_reports_every_job_in_order(tmp_path):
    runner = orchestrator_project(tmp_path / "p", concurrency_per_tenant=1)
    project = runner.parents[1]
    home = tmp_path / "home"
    out = cli("run", "--job-dir", "jobs/acme", "--workers", "3", cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    summaries = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [(s["job"], s["table"], s["rows_written"], s["status"]) for s in summaries] == [
        ("csv_employee_to_iceberg", "acme.csv_employee", 20, "ok"),
        ("csv_people_to_iceberg", "acme.csv_people", 20, "ok")]
    assert table_rows(home, "acme.csv_people").num_rows == 20

    bad = project / "configs" / "bad.yaml"
    bad.write_text("schedules: []\n")
    out = cli("run", "--job-dir", "jobs/acme", "--runner-config", str(bad), cwd=project, home=home)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"ERROR: {bad}: schedules: must not be empty (give at least one entry under 'schedules')"]
