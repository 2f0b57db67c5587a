"""One Airbyte connector behind a launcher: ``spec``, ``check``, ``discover`` and ``read`` as calls.

Files the connector reads (config, catalog, state) are written to a private work folder (mode 0700,
files 0600), removed when the connector is closed. Failures are one line with the connector's own
words: its TRACE ERROR message, else its last ERROR log, else the last line it wrote to stderr.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from dativo_ingest.engines.airbyte.protocol import (
    CATALOG,
    CONNECTION_STATUS,
    LOG,
    SPEC,
    TRACE,
    AirbyteStream,
    catalog_streams,
    connection_specification,
    connection_status,
    parse_message,
    trace_error,
)
from dativo_ingest.engines.common.files import write_atomic, write_json_atomic
from dativo_ingest.engines.common.workdir import make_workdir
from dativo_ingest.engines.launchers.base import ConnectorProcess, Launcher
from dativo_ingest.engines.launchers.early import NeedsConnector
from dativo_ingest.errors import SourceError

log = logging.getLogger(__name__)

SPEC_CACHE = ".dativo-airbyte-spec.json"
MAX_MESSAGE = 400


class ConnectorFailed(SourceError):
    """The connector reported an error or exited non-zero.

    ``commit_checkpointed``: every row the engine yielded before the failure is covered by a
    checkpoint it also yielded, so the runner may commit them (and nothing after) before failing.
    """

    def __init__(self, message: str, *, commit_checkpointed: bool = False) -> None:
        super().__init__(message)
        self.commit_checkpointed = commit_checkpointed


def one_line(text: str, redact: Callable[[str], str] | None = None) -> str:
    """``text`` on one line, redacted, cut to ``MAX_MESSAGE`` characters."""
    text = " ".join(str(text).split())
    text = redact(text) if redact else text
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class FailureNotes:
    """What the connector said that explains a failure, best first."""

    def __init__(self) -> None:
        self.trace_error: str | None = None
        self.error_log: str | None = None
        #: the last stdout line that was not a protocol message (a crash may print half a message)
        self.junk: str | None = None

    def note(self, message: dict[str, Any]) -> None:
        """Keep what a message says about a failure (a TRACE ERROR, an ERROR log)."""
        kind = message.get("type")
        if kind == TRACE and (message.get("trace") or {}).get("type") == "ERROR":
            self.trace_error = self.trace_error or trace_error(message["trace"])
        elif kind == LOG:
            entry = message.get("log") or {}
            if str(entry.get("level", "")).upper() in ("ERROR", "FATAL"):
                self.error_log = str(entry.get("message") or "")

    def reason(self, rc: int | None, stderr: list[str]) -> str:
        """The connector's own words for a failure with exit code ``rc`` (best first)."""
        said = self.trace_error or self.error_log or next((s for s in reversed(stderr) if s.strip()), "")
        code = f" (exit code {rc})" if rc not in (None, 0) else ""
        if said:
            return f"{said}{code}"
        if self.junk:
            return f"it exited with code {rc} after a line that is not an Airbyte message: {self.junk[:120]}"
        return f"it exited with code {rc} and said nothing"


class AirbyteConnector:
    """Run one connector's commands; ``close()`` (or ``with``) removes the work folder."""

    def __init__(self, name: str, launcher: Launcher, *, redact: Callable[[str], str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.launcher = launcher
        self.redact = redact
        self.env = env
        self.workdir = make_workdir("airbyte")
        self.process: ConnectorProcess | None = None

    # -- files -----------------------------------------------------------------------------------
    def write_file(self, name: str, data: Any) -> Path:
        """A file of the work folder the connector reads (JSON unless ``data`` is bytes), private to us."""
        return write_atomic(self.workdir / name, data if isinstance(data, bytes) else orjson.dumps(data), private=True)

    def close(self) -> None:
        """Stop a running command and remove the work folder."""
        if self.process is not None:
            self.process.kill()
            self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AirbyteConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands --------------------------------------------------------------------------------
    def start(self, args: list[str]) -> ConnectorProcess:
        """Start the connector with ``args`` (its files in the work folder)."""
        self.process = self.launcher.start(args, workdir=self.workdir, env=self.env)
        return self.process

    def fail(self, what: str, notes: FailureNotes, rc: int | None, proc: ConnectorProcess | None,
             **kwargs: Any) -> ConnectorFailed:
        """The error of a failed command ``what``, in the connector's own words."""
        stderr = proc.stderr_tail() if proc is not None else []
        return ConnectorFailed(one_line(f"airbyte connector '{self.name}' failed in {what}: "
                                        f"{notes.reason(rc, stderr)}", self.redact), **kwargs)

    def _command(self, args: list[str], want: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Run a short command; return (all messages, the first message of type ``want``)."""
        notes = FailureNotes()
        messages: list[dict[str, Any]] = []
        found: dict[str, Any] | None = None
        proc = self.start(args)
        try:
            for raw in proc.lines():
                message = parse_message(raw)
                if message is None:
                    continue
                messages.append(message)
                notes.note(message)
                if found is None and message.get("type") == want:
                    found = message
            rc = proc.wait()
        finally:
            proc.kill()
            self.process = None
        if rc != 0 or (found is None and notes.trace_error):
            raise self.fail(args[0], notes, rc, proc)
        if found is None:
            raise ConnectorFailed(one_line(f"airbyte connector '{self.name}' printed no {want} message for "
                                           f"'{args[0]}' (is it an Airbyte source?)", self.redact))
        return messages, found

    def spec(self, *, cached: bool = True, cached_only: bool = False) -> dict[str, Any]:
        """The connector's ``connectionSpecification`` (cached in its venv: a package version's spec is fixed);
        ``cached_only``: ``NeedsConnector`` rather than install the connector or run ``spec``."""
        if cached_only and not _installed(self.launcher):
            raise NeedsConnector("install")
        self.launcher.ensure_ready()
        cache = _spec_cache(self.launcher) if cached else None
        if cache is not None and cache.is_file():
            try:
                return dict(orjson.loads(cache.read_bytes()))
            except orjson.JSONDecodeError:
                cache.unlink(missing_ok=True)
        if cached_only:
            raise NeedsConnector("spec")
        _, message = self._command(["spec"], SPEC)
        assert message is not None
        spec = connection_specification(message)
        if cache is not None:
            write_json_atomic(cache, spec)
        return spec

    def check(self, config: dict[str, Any]) -> tuple[str, str]:
        """``check``: ``(SUCCEEDED|FAILED, message)``."""
        path = self.write_file("config.json", config)
        _, message = self._command(["check", "--config", str(path)], CONNECTION_STATUS)
        assert message is not None
        return connection_status(message)

    def discover(self, config: dict[str, Any]) -> list[AirbyteStream]:
        """``discover``: the connector's streams."""
        path = self.write_file("config.json", config)
        _, message = self._command(["discover", "--config", str(path)], CATALOG)
        assert message is not None
        return catalog_streams(message)

    def read_args(self, config: dict[str, Any], catalog: bytes | dict[str, Any], state: Any = None) -> list[str]:
        """The arguments of ``read``, with the config, catalog and state written to private files."""
        args = ["read", "--config", str(self.write_file("config.json", config)),
                "--catalog", str(self.write_file("catalog.json", catalog))]
        if state is not None:
            args += ["--state", str(self.write_file("state.json", state))]
        else:
            (self.workdir / "state.json").unlink(missing_ok=True)  # one written for an earlier start
        return args

    def read_blocks(self, args: list[str]) -> Iterator[bytes]:
        """Raw stdout of ``read`` in blocks of whole lines; the caller splits them, then calls ``finish``."""
        proc = self.start(args)
        yield from proc.blocks()

    def blocks(self) -> Iterator[bytes]:
        """Like ``read_blocks``, from the command already started (``start``)."""
        assert self.process is not None, "no command started"
        yield from self.process.blocks()

    def finish(self) -> tuple[int, list[str]]:
        """Wait for the running command: (exit code, last stderr lines)."""
        proc = self.process
        if proc is None:
            return 0, []
        rc = proc.wait()
        tail = proc.stderr_tail()
        self.process = None
        return rc, tail


def _installed(launcher: Launcher) -> bool:
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    return not isinstance(launcher, VenvLauncher) or launcher.is_installed()


def _spec_cache(launcher: Launcher) -> Path | None:
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    if isinstance(launcher, VenvLauncher) and launcher.is_installed():
        return launcher.venv / SPEC_CACHE
    return None
