"""A connector's private work folder (its config with credentials, its catalog, its state), removed when the run
ends — and, when the run was killed, at the next run's start at the latest.

Folders live in ``$DATIVO_HOME/tmp/connectors/<kind>-<pid>-<random>/`` (mode 0700). ``make_workdir`` first
removes the folders of processes that no longer exist: a SIGKILLed run cannot clean up after itself, so its
successor does, and a tap's ``config.json`` with a password does not outlive the run that wrote it for long.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from dativo_ingest.paths import scratch_dir

log = logging.getLogger(__name__)

_OWNED = re.compile(r"^[a-z]+-(\d+)-")


def workdirs_root() -> Path:
    """``$DATIVO_HOME/tmp/connectors``: where every connector work folder lives."""
    root = scratch_dir() / "connectors"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_stale(root: Path | None = None) -> int:
    """Remove the work folders of processes that no longer exist; how many were removed."""
    root = root or workdirs_root()
    removed = 0
    for folder in root.iterdir():
        match = _OWNED.match(folder.name)
        if folder.is_dir() and match and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d connector work folder(s) left by runs that were killed", removed)
    return removed


def make_workdir(kind: str) -> Path:
    """A new private work folder for a connector of ``kind`` (``airbyte``, ``singer``), after sweeping stale ones."""
    root = workdirs_root()
    sweep_stale(root)
    path = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=root))
    os.chmod(path, 0o700)
    return path


__all__ = ["make_workdir", "sweep_stale", "workdirs_root"]
