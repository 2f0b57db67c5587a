"""Where dativo keeps its local files: ``${DATIVO_HOME:-.local}``."""

from __future__ import annotations

import os
from pathlib import Path


def dativo_home() -> Path:
    """The embedded catalog, warehouse, state mirror and scratch space live here."""
    return Path(os.environ.get("DATIVO_HOME") or ".local").resolve()


def state_dir() -> Path:
    """The local state mirror (never the truth): ``$STATE_DIR`` or ``$DATIVO_HOME/state``."""
    env = os.environ.get("STATE_DIR")
    return Path(env).resolve() if env else dativo_home() / "state"


def scratch_dir() -> Path:
    """DuckDB spill files and other temporary data."""
    path = dativo_home() / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def connectors_dir() -> Path:
    """One virtualenv per installed connector package: ``$DATIVO_HOME/connectors/<package>-<version>/``."""
    return dativo_home() / "connectors"
