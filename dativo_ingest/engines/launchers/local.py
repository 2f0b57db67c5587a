"""A connector that is already an executable on this machine (one under development, say)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from dativo_ingest.engines.launchers.base import Launcher
from dativo_ingest.errors import InfrastructureError


class LocalLauncher(Launcher):
    """An executable on this machine (a connector under development)."""

    name = "local"

    def __init__(self, executable: str | Path, *, prefix: Sequence[str] = ()) -> None:
        self.executable = str(executable)
        #: e.g. ``[sys.executable]`` to run a plain script with the current Python
        self.prefix = list(prefix)

    def resolved(self) -> str:
        """The executable's path (``InfrastructureError`` naming it when it is not there)."""
        path = Path(self.executable)
        if path.is_file() and (self.prefix or os.access(path, os.X_OK)):
            return str(path.resolve())
        found = shutil.which(self.executable)
        if found:
            return found
        raise InfrastructureError(
            f"connector executable '{self.executable}' not found or not executable "
            f"(give an absolute path in engine.options.*.executable, or chmod +x it)"
        )

    def ensure_ready(self) -> None:
        """The executable must exist."""
        self.resolved()

    def command(self, args: Sequence[str], *, workdir: Path | None = None) -> list[str]:
        """The argv: the prefix (an interpreter), the executable, ``args``."""
        return [*self.prefix, self.resolved(), *args]
