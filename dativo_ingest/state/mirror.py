"""The local state mirror ``$STATE_DIR/{tenant}/{job}.json``: for people to read, never the truth."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dativo_ingest.paths import state_dir
from dativo_ingest.state.envelope import StateEnvelope


def mirror_path(tenant_id: str, job_name: str) -> Path:
    return state_dir() / tenant_id / f"{job_name}.json"


def write_mirror(tenant_id: str, job_name: str, envelope: StateEnvelope) -> Path:
    """Atomically replace the mirror file (write to a temp file, then rename)."""
    path = mirror_path(tenant_id, job_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(envelope.to_json())
    os.replace(tmp, path)
    return path


def read_mirror(tenant_id: str, job_name: str) -> StateEnvelope | None:
    """The envelope of the mirror file as the last commit of this machine stored it (secrets concealed as
    ``${NAME}``), or None when there is none or it cannot be read — a guess only, to start a connector early."""
    try:
        return StateEnvelope.from_json(mirror_path(tenant_id, job_name).read_text())
    except (OSError, ValueError):
        return None


def remove_mirror(tenant_id: str, job_name: str) -> None:
    mirror_path(tenant_id, job_name).unlink(missing_ok=True)
