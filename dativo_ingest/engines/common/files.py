"""Atomic writes of the engines' own files: caches (discovered catalogs, specs, ``--about``), kept connector
configs, and the private files a connector reads (config, catalog, state).

Each write goes to a temporary file of its own in the target's folder (a unique name: two runs, two pool workers,
two threads may write the same cache at once) and is then moved over the target with ``os.replace``: a reader sees
the old file or the new one, never a part of either, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

#: mode of a cache anyone on the machine may read (catalogs and specs hold no secret) / of a private file
SHARED_MODE = 0o644
PRIVATE_MODE = 0o600


def write_atomic(path: Path, data: bytes, *, private: bool = False) -> Path:
    """Replace ``path`` with ``data`` at once (see the module docstring); ``private``: readable by us only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if not private:
            os.chmod(tmp, SHARED_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: Path, value: Any, *, private: bool = False) -> Path:
    """``value`` as JSON, written with ``write_atomic``."""
    return write_atomic(path, orjson.dumps(value), private=private)


__all__ = ["PRIVATE_MODE", "SHARED_MODE", "write_atomic", "write_json_atomic"]
