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


#: a shared folder of connector venvs (e.g. a per-machine cache), instead of ``$DATIVO_HOME/connectors``
CONNECTORS_DIR_ENV = "DATIVO_CONNECTORS_DIR"


def connectors_dir() -> Path:
    """One virtualenv per installed connector package: ``${DATIVO_CONNECTORS_DIR:-$DATIVO_HOME/connectors}/``."""
    env = os.environ.get(CONNECTORS_DIR_ENV)
    return Path(env).expanduser().resolve() if env else dativo_home() / "connectors"


#: the runner file (orchestrated mode; ``run`` takes its ``concurrency_per_tenant``) named by the environment
RUNNER_CONFIG_ENV = "DATIVO_RUNNER_CONFIG"
DEFAULT_RUNNER_CONFIG = Path("configs") / "runner.yaml"


def runner_config_path(given: Path | None = None) -> Path:
    """``--runner-config``, else ``$DATIVO_RUNNER_CONFIG``, else ``configs/runner.yaml``."""
    if given is not None:
        return given
    env = os.environ.get(RUNNER_CONFIG_ENV)
    return Path(env) if env else DEFAULT_RUNNER_CONFIG
