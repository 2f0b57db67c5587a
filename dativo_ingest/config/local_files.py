"""Which local files a job may read as data: the one rule, applied when the plan is built and to every file a
source opens (globs and symlinks resolved first).

- Never a secrets folder: ``--secrets-dir`` and ``<project>/secrets``, in every mode.
- In ``--mode cloud`` only files under the project's data folder (``<project>/data``); a path outside it, or a
  symlink that leads outside, is refused — a hosted tenant may not read the host's files or another tenant's.
- In ``self_hosted`` mode any other path is allowed (the machine is the user's own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dativo_ingest.errors import ConfigError

DATA_FOLDER = "data"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class LocalFileAccess:
    """The folders a job's local file sources may and may not read (see the module docstring)."""

    project_root: Path
    mode: str = "self_hosted"
    #: resolved secrets folders: never readable as data
    forbidden: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def for_project(cls, project_root: Path, mode: str, secrets_dir: Path | None) -> LocalFileAccess:
        """The access rule of a job in ``project_root`` run in ``mode`` with this ``--secrets-dir``."""
        folders = [Path(project_root) / "secrets"] + ([Path(secrets_dir)] if secrets_dir is not None else [])
        resolved = tuple(dict.fromkeys(Path(os.path.realpath(f if f.is_absolute() else Path.cwd() / f))
                                       for f in folders))
        return cls(Path(os.path.realpath(project_root)), mode, resolved)

    @property
    def data_folder(self) -> Path:
        """``<project>/data`` (resolved): the only place cloud-mode jobs read local files from."""
        return Path(os.path.realpath(self.project_root / DATA_FOLDER))

    def check(self, path: Path | str, *, where: Path | str | None, field: str) -> Path:
        """``path`` resolved (symlinks followed) if the job may read it, else ``ConfigError`` naming the field."""
        real = Path(os.path.realpath(path))
        for folder in self.forbidden:
            if _inside(real, folder):
                raise ConfigError(where, f"{path} is inside the secrets folder {folder}", field=field,
                                  fix="secrets are never read as data: move the file to the project's data folder")
        if self.mode == "cloud" and not _inside(real, self.data_folder):
            shown = f"{path} (→ {real})" if str(real) != str(path) else str(path)
            raise ConfigError(where, f"{shown} is outside the project's data folder {self.data_folder}",
                              field=field, fix="in cloud mode local files are read from the project's data/ "
                                               "folder only: move the file there")
        return real


__all__ = ["DATA_FOLDER", "LocalFileAccess"]
