"""The early-start handle (``engines.launchers.early``) with real processes: a connector started with a guessed state
is read only when the committed state gives it the same state; otherwise it (and what it started) is killed, reaped,
its pipes closed and its files removed, and a new one started with the committed state."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dativo_ingest.engines.base import start_early
from dativo_ingest.engines.common.workdir import make_workdir
from dativo_ingest.engines.launchers.base import ConnectorProcess
from dativo_ingest.engines.launchers.early import EarlyStart, NeedsConnector, same_state
from dativo_ingest.engines.launchers.local import LocalLauncher
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.stream import Log, Message

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, /proc")

#: a connector that prints the state it was given, starts a grandchild (same process group), then waits
CONNECTOR = "import subprocess, sys, time\nsubprocess.Popen(['sleep', '300'])\nprint(sys.argv[1], flush=True)\n" \
            "time.sleep(300)\n"


def _gone(pid: int) -> bool:
    """No such process, or only a zombie (not reaped by us: a grandchild is reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _handle(tmp_path: Path, given: str, started: list[ConnectorProcess]) -> tuple[EarlyStart, Path]:
    work = make_workdir("airbyte")
    (work / "config.json").write_text('{"password": "pw-123456789"}')
    script = tmp_path / "connector.py"
    script.write_text(CONNECTOR)
    launcher = LocalLauncher(script, prefix=[sys.executable])

    def start(state: str) -> ConnectorProcess:
        process = launcher.start([state], workdir=work)
        started.append(process)
        return process

    def consume(committed: StateEnvelope, process: ConnectorProcess) -> Iterator[Message]:
        yield Log("INFO", next(process.lines()).decode().strip())

    def translate(envelope: StateEnvelope) -> str:
        return str(envelope.shared.get("offset", "none"))

    return EarlyStart("test", start(given), given, translate=translate, start=start, consume=consume,
                      cleanup=lambda: shutil.rmtree(work, ignore_errors=True)), work


def test_a_guess_equal_to_the_commit_reads_the_early_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path / "home"))
    started: list[ConnectorProcess] = []
    early, work = _handle(tmp_path, "7", started)
    messages = list(early.messages(StateEnvelope(shared={"offset": 7})))
    assert [m.message for m in messages if isinstance(m, Log)] == ["7"]
    assert len(started) == 1 and not early.restarted
    assert early.closed and not work.exists()


def test_a_wrong_guess_kills_reaps_and_closes_the_early_process_and_starts_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path / "home"))
    started: list[ConnectorProcess] = []
    early, work = _handle(tmp_path, "3", started)
    first = started[0]
    messages = list(early.messages(StateEnvelope(shared={"offset": 7})))
    assert [m.message for m in messages if isinstance(m, Log)] == ["7"]  # nothing of the early process was read
    assert early.restarted and len(started) == 2
    assert first.popen.returncode is not None  # killed and reaped: no zombie of ours
    assert first.popen.stdout is not None and first.popen.stdout.closed
    assert first.popen.stderr is not None and first.popen.stderr.closed
    assert _gone(first.popen.pid)
    assert early.closed and not work.exists()  # the config file with the password is gone


def test_a_handle_never_read_is_closed_with_its_process_group_and_files(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path / "home"))
    started: list[ConnectorProcess] = []
    early, work = _handle(tmp_path, "3", started)
    process = started[0]
    assert next(process.lines()).strip() == b"3"  # the grandchild runs by now
    children = Path(f"/proc/{process.popen.pid}/task/{process.popen.pid}/children").read_text().split()
    early.close()  # the run failed before reading (the catalog could not be opened, say)
    early.close()  # once is enough
    assert process.popen.returncode is not None and process.popen.stdout is not None and process.popen.stdout.closed
    assert children and all(_gone(int(pid)) for pid in children)
    assert not work.exists()


def test_same_state_ignores_key_order_only() -> None:
    assert same_state([{"a": 1, "b": {"c": 2, "d": 3}}], [{"b": {"d": 3, "c": 2}, "a": 1}])
    assert not same_state({"a": 1}, {"a": "1"})
    assert not same_state(None, {})
    assert same_state(None, None)


class _Engine:
    name = "fake"

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.guessed = False

    def start_early(self, plan: Any, guess: StateEnvelope) -> Any:
        self.guessed = True
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Plan:
    job_name = "job"
    engine_options: dict[str, Any] = {}

    class secrets:  # noqa: N801 - stands in for plan.secrets
        @staticmethod
        def redact(text: str) -> str:
            return text


@pytest.mark.parametrize("outcome", [None, NeedsConnector("discover"), ValueError("bad config")])
def test_an_engine_that_cannot_start_early_leaves_the_run_as_it_was(outcome: Any) -> None:
    engine = _Engine(outcome)
    assert start_early(engine, _Plan(), StateEnvelope) is None  # type: ignore[arg-type]
    assert engine.guessed


def test_an_engine_without_start_early_does_not_read_the_mirror() -> None:
    def guess() -> StateEnvelope:
        raise AssertionError("the mirror was read for an engine that cannot start early")

    class Native:
        name = "native"

    assert start_early(Native(), _Plan(), guess) is None  # type: ignore[arg-type]


def test_a_job_may_opt_out() -> None:
    engine = _Engine(NeedsConnector("never asked"))
    plan = _Plan()
    plan.engine_options = {"start_early": False}  # type: ignore[attr-defined]
    assert start_early(engine, plan, StateEnvelope) is None  # type: ignore[arg-type]
    assert not engine.guessed


def test_cdc_connectors_are_never_started_on_a_guess() -> None:
    from dativo_ingest.engines.airbyte.engine import uses_cdc

    assert uses_cdc({"host": "db", "replication_method": {"method": "CDC", "replication_slot": "s"}})
    assert uses_cdc({"replication_method": "cdc"})
    assert not uses_cdc({"count": 20, "seed": 42, "replication_method": {"method": "Standard"}})
    assert not uses_cdc({"note": "CDC"})


def test_log_based_singer_streams_are_never_started_on_a_guess() -> None:
    from dativo_ingest.engines.singer.engine import PreparedSync
    from dativo_ingest.engines.singer.plugins import TapStream

    def sync(method: str | None, catalog_method: str | None) -> PreparedSync:
        prepared = object.__new__(PreparedSync)  # the method reads only the streams and the catalog
        prepared.streams = [TapStream("events", "public-events", method, None)]
        prepared.catalog = {"streams": [{"tap_stream_id": "public-events", "metadata": [
            {"breadcrumb": [], "metadata": {"selected": True, "replication-method": catalog_method}}]}]}
        return prepared

    assert sync("LOG_BASED", None).log_based()
    assert sync(None, "LOG_BASED").log_based()
    assert not sync("INCREMENTAL", "INCREMENTAL").log_based()
