"""Which launcher starts a connector: ``venv``, ``docker`` or ``local``.

The job or recipe may say (``engine.options.<engine>.launcher``); otherwise a connector published
on PyPI runs from its own venv, one that only has an image runs in Docker, and one given as a path
runs as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dativo_ingest.engines.launchers.base import Launcher
from dativo_ingest.errors import ConfigError
from dativo_ingest.paths import CONNECTORS_DIR_ENV, connectors_dir

LAUNCHERS = ("venv", "docker", "local")


def venv_root() -> Path:
    """Where venv launchers install connectors (``DATIVO_CONNECTORS_DIR``)."""
    return connectors_dir()


@dataclass
class LauncherSpec:
    """Everything a launcher may need; which fields matter depends on the launcher."""

    launcher: str | None = None
    package: str | None = None
    version: str | None = None
    executable: str | None = None
    image: str | None = None
    #: arguments before the executable for ``local`` (e.g. ``[python3]`` for a plain script)
    prefix: list[str] = field(default_factory=list)
    network: str | None = None
    #: where the error points when the choice is impossible
    path: str | Path | None = None
    field_prefix: str = "engine.options"

    @property
    def pip_url(self) -> str | None:
        """The package as pip installs it (``package==version``), or None."""
        if not self.package:
            return None
        return f"{self.package}=={self.version}" if self.version and self.version != "latest" else self.package

    @property
    def docker_image(self) -> str | None:
        """The image as docker pulls it (``image:version``), or None."""
        if not self.image:
            return None
        return self.image if ":" in self.image.split("/")[-1] else f"{self.image}:{self.version or 'latest'}"


def default_launcher(spec: LauncherSpec) -> str:
    """The launcher a spec asks for, else the one its fields imply (venv, docker, local)."""
    if spec.launcher:
        return spec.launcher
    if spec.package:
        return "venv"
    if spec.image:
        return "docker"
    if spec.executable and ("/" in spec.executable or spec.prefix):
        return "local"
    raise ConfigError(spec.path, "no way to start this connector: it has no package, image or executable",
                      field=f"{spec.field_prefix}.launcher",
                      fix="give package (PyPI), image (Docker) or executable (a path) in engines/*.yaml or "
                          "the job's engine options")


def choose_launcher(spec: LauncherSpec, *, docker_client: Any = None, root: Path | None = None) -> Launcher:
    """The launcher ``spec`` asks for (or the default one), ready to ``start``."""
    kind = default_launcher(spec)
    where = f"{spec.field_prefix}.launcher"
    if kind not in LAUNCHERS:
        raise ConfigError(spec.path, f"unknown launcher '{kind}'", field=where,
                          fix=f"use one of: {', '.join(LAUNCHERS)}")
    if kind == "venv":
        from dativo_ingest.engines.launchers.venv import VenvLauncher

        if not spec.pip_url:
            raise ConfigError(spec.path, "the venv launcher needs a PyPI package", field=f"{spec.field_prefix}.package",
                              fix="set package (and version) in engines/*.yaml, or use launcher: docker or local")
        return VenvLauncher(spec.pip_url, spec.executable or _executable_of(spec.package or ""),
                            root=root or venv_root())
    if kind == "docker":
        from dativo_ingest.engines.launchers.docker import DockerLauncher

        image = spec.docker_image
        if not image:
            raise ConfigError(spec.path, "the docker launcher needs an image", field=f"{spec.field_prefix}.image",
                              fix="set image (e.g. airbyte/source-faker) in engines/*.yaml or the job's options")
        return DockerLauncher(image, client=docker_client, network=spec.network)
    from dativo_ingest.engines.launchers.local import LocalLauncher

    if not spec.executable:
        raise ConfigError(spec.path, "the local launcher needs an executable", field=f"{spec.field_prefix}.executable",
                          fix="give the path of the connector's executable")
    return LocalLauncher(spec.executable, prefix=spec.prefix)


def _executable_of(package: str) -> str:
    """``airbyte-source-faker`` → ``source-faker`` (the console script Airbyte's Python connectors install)."""
    return package.removeprefix("airbyte-")


__all__ = ["CONNECTORS_DIR_ENV", "LAUNCHERS", "LauncherSpec", "choose_launcher", "default_launcher", "venv_root"]

