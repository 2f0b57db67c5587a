"""Engine manifests: the YAML that says how an engine realises each connector (``airbyte.yaml``, ``singer.yaml``).

Each ships inside the package (``dativo_ingest/engines/<engine>/<engine>.yaml``, read through
``importlib.resources``, so a wheel install has them). A project may keep its own ``engines/<engine>.yaml``:
its entries are laid over the shipped ones by name (an entry of the project replaces the shipped entry of that
name; the others stay), so a project adds or pins one connector without copying the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dativo_ingest.errors import ConfigError

PROJECT_FOLDER = "engines"


@dataclass(frozen=True)
class Manifest:
    """The merged entries of one engine manifest, and where each entry was defined."""

    entries: dict[str, dict[str, Any]]
    origins: dict[str, Path]
    #: the project's own file when it has one, else the shipped file (for messages about the file as a whole)
    path: Path

    def origin(self, name: str) -> Path:
        """The file that defined ``name`` (the manifest's path when no file did)."""
        return self.origins.get(name, self.path)


def shipped_path(engine: str) -> Path:
    """The manifest shipped with the package for ``engine``."""
    return Path(str(resources.files(f"dativo_ingest.engines.{engine}").joinpath(f"{engine}.yaml")))


def project_path(engine: str, project_root: Path | None) -> Path | None:
    """``<project>/engines/<engine>.yaml`` when the project has one."""
    if project_root is None:
        return None
    path = Path(project_root) / PROJECT_FOLDER / f"{engine}.yaml"
    return path if path.is_file() else None


def _entries(path: Path, section: str) -> dict[str, dict[str, Any]]:
    from dativo_ingest.config.loader import read_yaml

    data = read_yaml(path)
    entries = data.get(section) if data.get(section) is not None else {}
    if not isinstance(entries, dict):
        raise ConfigError(path, "must be a mapping of connector name to entry", field=section,
                          fix=f"see the comment at the top of {shipped_path(path.stem).name} in the package")
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ConfigError(path, "must be a mapping", field=f"{section}.{name}",
                              fix="give the entry's keys (see the comment at the top of the file)")
    return {str(k): v for k, v in entries.items()}


def load_manifest(engine: str, section: str, project_root: Path | None) -> Manifest:
    """The shipped manifest of ``engine`` with the project's entries laid over it (see the module docstring)."""
    shipped = shipped_path(engine)
    entries = _entries(shipped, section)
    origins = dict.fromkeys(entries, shipped)
    own = project_path(engine, project_root)
    if own is not None:
        mine = _entries(own, section)
        entries.update(mine)
        origins.update(dict.fromkeys(mine, own))
    return Manifest(entries, origins, own or shipped)


__all__ = ["Manifest", "load_manifest", "project_path", "shipped_path"]
