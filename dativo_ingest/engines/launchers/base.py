"""One interface for starting a connector process and reading its stdout line by line."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from dativo_ingest.engines.common.pipes import READ_BYTES, line_blocks

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40

#: run before the connector (in a tiny Python that then becomes it): ask Linux to SIGKILL it when the process
#: that started it dies — a SIGKILLed run cannot stop its connectors itself — and exit if that already happened
_DIE_WITH_PARENT = (
    "import ctypes,os,signal,sys\n"
    "try:\n ctypes.CDLL(None,use_errno=True).prctl(1,signal.SIGKILL)\n"
    "except Exception:\n pass\n"
    "if os.getppid()!=int(sys.argv[1]):\n sys.exit(137)\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def die_with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped so the connector is killed when this process dies (Linux ``PR_SET_PDEATHSIG``; the
    wrapper execs the connector, so its pid, stdin/stdout and exit code are the connector's)."""
    if not sys.platform.startswith("linux") or not argv:
        return list(argv)
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


class ConnectorProcess:
    """A running connector: iterate ``lines()`` (raw stdout lines), then ``wait()``.

    stderr is drained on a thread into a bounded tail, so a chatty connector never blocks and a
    failure can quote its last lines.
    """

    def __init__(self, popen: subprocess.Popen[bytes], description: str) -> None:
        self.popen = popen
        self.description = description
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_thread: threading.Thread | None = None
        if popen.stderr is not None:
            self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
            self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            self._tail.append(raw.decode("utf-8", "replace").rstrip())

    def lines(self) -> Iterator[bytes]:
        """stdout line by line (blank lines skipped)."""
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            if raw.strip():
                yield raw

    def blocks(self, size: int = READ_BYTES) -> Iterator[bytes]:
        """stdout in blocks of about ``size`` bytes that end at a line end (for readers splitting lines in bulk),
        read so that a connector flushing line by line is not slowed down (``engines.common.pipes``)."""
        assert self.popen.stdout is not None
        return line_blocks(self.popen.stdout, size=size)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process (and its stderr reader): its exit code."""
        rc = self.popen.wait(timeout=timeout)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        return rc

    def stderr_tail(self, n: int = 10) -> list[str]:
        """The last ``n`` non-empty lines it wrote to stderr."""
        return [line for line in self._tail if line][-n:]

    def kill(self) -> None:
        """Stop the connector and everything it started (it runs in its own process group)."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self.popen.kill()
        self.popen.wait()

    def close(self) -> None:
        """Kill the connector (if it still runs), reap it and close its pipes: for a process nobody reads any more
        (one started early with a state that turned out wrong)."""
        self.kill()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)  # the connector is gone: its stderr ends
        if self.popen.stderr is not None and (self._stderr_thread is None or not self._stderr_thread.is_alive()):
            self.popen.stderr.close()

    def __enter__(self) -> ConnectorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class Launcher(ABC):
    """How to start one connector. ``args`` are the connector's own arguments (``read --config F``).

    Every file an argument names lives under ``workdir``; launchers that isolate the process (docker)
    mount ``workdir`` read-only and rewrite the paths.
    """

    name: str

    @abstractmethod
    def ensure_ready(self) -> None:
        """Install or locate the connector; raise ``InfrastructureError`` with the reason and fix."""

    @abstractmethod
    def command(self, args: Sequence[str], *, workdir: Path | None = None) -> list[str]:
        """The argv that runs the connector with ``args``."""

    def start(self, args: Sequence[str], *, workdir: Path | None = None,
              env: Mapping[str, str] | None = None) -> ConnectorProcess:
        """Start the connector with ``args`` in ``workdir`` (installed first when needed)."""
        self.ensure_ready()
        argv = self.command(args, workdir=workdir)
        popen = subprocess.Popen(  # noqa: S603 - argv is built from configuration, never a shell string
            die_with_parent(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None, cwd=str(workdir) if workdir else None,
            start_new_session=True, bufsize=1 << 20,  # big reads: connectors print millions of short lines
        )
        description = f"{self.name}: {' '.join(argv[:1] + list(args[:1]))}"
        log.debug("started %s (pid %d)", description, popen.pid)
        return ConnectorProcess(popen, description)
