"""A connector installed from PyPI (or any pip URL) into its own virtualenv, once.

Connectors pin old libraries (airbyte-cdk, pydantic 1, singer-sdk): they never go into the
project's venv. The venv lives under ``$DATIVO_HOME/connectors/<package>-<version>/``; a marker file
written last says the install finished, so a half-made venv (killed install, failed pip) is removed
and rebuilt instead of being used.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dativo_ingest.engines.launchers.base import Launcher
from dativo_ingest.errors import InfrastructureError
from dativo_ingest.logs import redact
from dativo_ingest.paths import connectors_dir

MARKER = ".dativo-installed"
PIP_TIMEOUT_SECONDS = 900


def venv_slug(pip_url: str) -> str:
    """``airbyte-source-faker==6.2.0`` → ``airbyte-source-faker-6.2.0``; anything odder gets a short hash."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+?)(?:==([A-Za-z0-9_.\-+]+))?", pip_url.strip())
    if match:
        name = re.sub(r"[\[\],]", "_", match.group(1)).lower()
        return f"{name}-{match.group(2) or 'latest'}"
    head = re.sub(r"[^A-Za-z0-9_.-]+", "_", pip_url.split("/")[-1].split("@")[0])[:40].strip("_") or "pkg"
    return f"{head}-{hashlib.sha256(pip_url.encode()).hexdigest()[:10]}"


class VenvLauncher(Launcher):
    """Install ``pip_url`` into its own venv and run ``executable`` from it."""

    name = "venv"

    def __init__(self, pip_url: str, executable: str, *, python: str | None = None,
                 root: Path | None = None) -> None:
        self.pip_url = pip_url
        self.executable = executable
        self.python = python or sys.executable
        self.venv = (root or connectors_dir()) / venv_slug(pip_url)

    @property
    def bin_dir(self) -> Path:
        """The venv's ``bin`` folder."""
        return self.venv / "bin"

    def executable_path(self) -> Path:
        """The connector's executable in the venv."""
        return self.bin_dir / self.executable

    def is_installed(self) -> bool:
        """Whether the install finished (its marker is written last)."""
        return (self.venv / MARKER).is_file()

    def ensure_ready(self) -> None:
        """Install the package into its own venv unless it is there (one installer at a time)."""
        if self.is_installed() and self.executable_path().exists():
            return
        self.venv.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.venv.parent / f"{self.venv.name}.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one installer per venv, even across processes
            if not (self.is_installed() and self.executable_path().exists()):
                self._install()

    def _install(self) -> None:
        if self.venv.exists():
            shutil.rmtree(self.venv)  # half-made by an earlier, interrupted install
        started = time.monotonic()
        try:
            _run([self.python, "-m", "venv", str(self.venv)], what=f"creating the venv {self.venv}")
            _run([str(self.bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                  self.pip_url], what=f"pip install {self.pip_url}")
            if not self.executable_path().exists():
                found = sorted(p.name for p in self.bin_dir.iterdir() if not p.name.startswith(("python", "pip")))
                raise InfrastructureError(
                    f"{self.pip_url} installed but has no executable '{self.executable}' in {self.bin_dir} "
                    f"(set the executable to one of: {', '.join(found[:10]) or 'none'})"
                )
        except BaseException:
            shutil.rmtree(self.venv, ignore_errors=True)
            raise
        (self.venv / MARKER).write_text(f"{self.pip_url}\n{time.monotonic() - started:.1f}s\n")

    def command(self, args: Sequence[str], *, workdir: Path | None = None) -> list[str]:
        """The argv: the venv's executable and ``args``."""
        return [str(self.executable_path()), *args]


def _run(argv: list[str], *, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)  # noqa: S603
    except subprocess.TimeoutExpired as exc:
        raise InfrastructureError(f"{what} timed out after {PIP_TIMEOUT_SECONDS}s "
                                  f"(check the package index is reachable)") from exc
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line] or lines[-3:]
        reason = redact(" | ".join(errors[-3:]))[:500]
        raise InfrastructureError(f"{what} failed: {reason} (check the package name and version on PyPI)")
