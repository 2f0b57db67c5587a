"""Peer tools for the benches, each installed into a venv of its own under bench/out/ (never into the project's).

    ensure_venv(PEER)   -> the venv's python, installed on first use (a log beside it), or PeerUnavailable
    sling_command()     -> the Sling binary and the environment it runs in, or PeerUnavailable

A peer that cannot be installed or cannot run here (no network for a download it insists on) is skipped by the
bench with the reason printed; it is never a failure of the bench.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "out"


class PeerUnavailable(Exception):
    """A peer cannot be installed or run on this machine; the message says why."""


@dataclass(frozen=True)
class PeerVenv:
    """A venv of one peer: its folder name, what pip installs and a probe that prints the version it expects."""

    name: str
    requirements: tuple[str, ...]
    probe: str
    expect: str

    @property
    def path(self) -> Path:
        return OUT_DIR / f"venv-{self.name}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


# psycopg2 rather than SQLAlchemy 2.1's default psycopg 3 driver: it was the faster of the two for dlt in bench/db.py
DLT_VERSION = "1.31.0"
DLT = PeerVenv("dlt", (f"dlt[filesystem,pyiceberg,sql_database]=={DLT_VERSION}", "psycopg2-binary>=2.9,<3"),
               "import dlt, psycopg2, pyiceberg, sqlalchemy; print(dlt.__version__)", DLT_VERSION)
# sling's own package downloads its binary at import time; sling-linux-amd64 ships it in the wheel. Its file and
# DuckDB targets run the DuckDB CLI (downloaded by sling unless DUCKDB_PATH names one: duckdb-cli ships it)
SLING_VERSION = "1.4.11"
SLING = PeerVenv("sling", (f"sling-linux-amd64=={SLING_VERSION}", "duckdb-cli"),
                 "import sling_linux_amd64, duckdb_cli; print('" + SLING_VERSION + "')", SLING_VERSION)


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def ensure_venv(peer: PeerVenv) -> Path:
    """The python of ``peer``'s venv, installed here when missing or of another version."""
    if peer.python.exists():
        got = subprocess.run([str(peer.python), "-c", peer.probe], capture_output=True, text=True)
        if got.returncode == 0 and got.stdout.strip() == peer.expect:
            return peer.python
        shutil.rmtree(peer.path, ignore_errors=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log = OUT_DIR / f"venv-{peer.name}-install.log"
    print(f"[{peer.name}] installing {' '.join(peer.requirements)} into {peer.path} (log: {log})", flush=True)
    started = time.perf_counter()
    with open(log, "wb") as out:
        for step in ([sys.executable, "-m", "venv", str(peer.path)],
                     [str(peer.python), "-m", "pip", "install", "-q", *peer.requirements]):
            if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
                shutil.rmtree(peer.path, ignore_errors=True)
                raise PeerUnavailable(f"could not install {peer.name} ({' '.join(step[-3:])}); see {log}:\n"
                                      + textwrap.indent(_tail(log), "  "))
    print(f"[{peer.name}] installed in {time.perf_counter() - started:.0f}s", flush=True)
    return peer.python


#: the DuckDB CLI as sling runs it, offline: json and parquet are built into duckdb-cli, so sling's INSTALL of
#: them (a download) is dropped
_DUCKDB_WRAPPER = """#!/bin/sh
sed -u -E 's/INSTALL +[a-z_]+ *;//Ig' | exec "{duckdb}" "$@"
"""


def sling_command(home: Path) -> tuple[list[str], dict[str, str]]:
    """The Sling binary and its environment (``SLING_HOME_DIR`` under ``home``, ``DUCKDB_PATH`` the CLI of its
    venv), installed on first use."""
    python = ensure_venv(SLING)
    site = subprocess.run([str(python), "-c", "import sling_linux_amd64, duckdb_cli, os; print(os.path.dirname("
                           "sling_linux_amd64.__file__)); print(os.path.dirname(duckdb_cli.__file__))"],
                          capture_output=True, text=True, check=True).stdout.split()
    binary = Path(site[0]) / "bin" / "sling-linux-amd64"
    duckdb = Path(site[1]) / "duckdb"
    if not binary.is_file() or not duckdb.is_file():
        raise PeerUnavailable(f"sling: no binary at {binary} or no DuckDB CLI at {duckdb}")
    wrapper = SLING.path / "duckdb-offline"
    if not wrapper.is_file():
        wrapper.write_text(_DUCKDB_WRAPPER.format(duckdb=duckdb))
        wrapper.chmod(0o755)
    env = {**os.environ, "SLING_HOME_DIR": str(home / "sling"), "DUCKDB_PATH": str(wrapper),
           "SLING_DISABLE_TELEMETRY": "true"}
    return [str(binary)], env


__all__ = ["DLT", "DLT_VERSION", "SLING", "PeerUnavailable", "PeerVenv", "ensure_venv", "sling_command"]
