"""A connector packaged as a Docker image, run through the Docker SDK with ``docker run --rm -i`` semantics.

The job's work folder (config, catalog, state files) is mounted read-only at ``/dativo/work``; every
argument naming a file under it is rewritten to the container path. The container runs as the
calling user (so the private work folder stays private), is removed when it ends or is killed, and
its stdout is read line by line like any other connector's. Needs the optional ``docker`` package
(``pip install 'dativo-ingest[docker]'``) and a reachable Docker daemon.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dativo_ingest.engines.launchers.base import STDERR_TAIL_LINES, ConnectorProcess, Launcher
from dativo_ingest.errors import InfrastructureError

CONTAINER_WORKDIR = "/dativo/work"
INSTALL_HINT = "pip install 'dativo-ingest[docker]'"


def docker_sdk() -> Any:
    """The ``docker`` module, imported only when a docker launcher is really used."""
    try:
        import docker
    except ImportError:
        raise InfrastructureError(f"the docker launcher needs the Docker SDK for Python ({INSTALL_HINT}) and a "
                                  "running Docker daemon; or set engine.options.airbyte.launcher: venv") from None
    return docker


class DockerProcess(ConnectorProcess):
    """A running container behind the :class:`ConnectorProcess` interface."""

    def __init__(self, container: Any, description: str) -> None:  # noqa: D107 - no Popen here
        self.container = container
        self.description = description
        self.popen = None  # type: ignore[assignment]
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._removed = False
        self._stderr_thread: threading.Thread | None = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        try:
            for line in _split_lines(self.container.logs(stdout=False, stderr=True, stream=True, follow=True)):
                self._tail.append(line.decode("utf-8", "replace").rstrip())
        except Exception:  # noqa: BLE001 - the container may be gone already; the tail is best effort
            return

    def lines(self) -> Iterator[bytes]:
        """The container's stdout line by line."""
        for line in _split_lines(self.container.logs(stdout=True, stderr=False, stream=True, follow=True)):
            if line.strip():
                yield line

    def blocks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The container's stdout as its lines come."""
        yield from self.lines()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the container: its exit code."""
        result = self.container.wait(timeout=timeout) if timeout is not None else self.container.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        self._remove()
        return int(result.get("StatusCode", 1)) if isinstance(result, dict) else int(result)

    def kill(self) -> None:
        """Stop and remove the container (once)."""
        if self._removed:
            return
        try:
            self.container.kill()
        except Exception:  # noqa: BLE001 - already stopped
            pass
        self._remove()

    def _remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        try:
            self.container.remove(force=True)  # --rm
        except Exception:  # noqa: BLE001 - already removed
            pass


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Docker log streams arrive in arbitrary chunks; yield whole lines (with their newline)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        if b"\n" not in chunk:
            continue
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


class DockerLauncher(Launcher):
    """Run ``image`` (``airbyte/source-faker:6.2.0``) with the connector's own arguments."""

    name = "docker"

    def __init__(self, image: str, *, client: Any = None, network: str | None = None,
                 user: str | None = None, pull: bool = True) -> None:
        self.image = image
        self._client = client
        self.network = network
        #: ``uid:gid`` the container runs as; default: the calling user
        self.user = user if user is not None else f"{os.getuid()}:{os.getgid()}"
        self.pull = pull

    def client(self) -> Any:
        """The Docker client, made on first use (``InfrastructureError`` when no daemon answers)."""
        if self._client is None:
            sdk = docker_sdk()
            try:
                self._client = sdk.from_env()
            except Exception as exc:  # noqa: BLE001 - docker.errors.DockerException and socket errors
                raise InfrastructureError(
                    f"cannot reach the Docker daemon ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                    "start Docker or set DOCKER_HOST, or set engine.options.airbyte.launcher: venv") from None
        return self._client

    def ensure_ready(self) -> None:
        """The image must be there (pulled when missing and pulling is allowed)."""
        client = self.client()
        try:
            client.images.get(self.image)
            return
        except Exception as exc:  # noqa: BLE001 - ImageNotFound, or the daemon went away
            if type(exc).__name__ != "ImageNotFound" or not self.pull:
                raise InfrastructureError(f"docker image {self.image} is not available ({type(exc).__name__}); "
                                          f"run 'docker pull {self.image}'") from None
        repository, _, tag = self.image.rpartition(":") if ":" in self.image.split("/")[-1] else (self.image, "", "")
        try:
            client.images.pull(repository, tag=tag or "latest")
        except Exception as exc:  # noqa: BLE001
            raise InfrastructureError(f"docker pull {self.image} failed ({type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); check the image name "
                                      "and tag in engines/airbyte.yaml") from None

    def container_args(self, args: Sequence[str], *, workdir: Path | None = None,
                       env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The keyword arguments of ``client.containers.create`` (what ``docker run --rm -i`` would do)."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": self.container_command(args, workdir=workdir),
            "stdin_open": True,  # -i
            "detach": True,
            "user": self.user,
            "environment": dict(env or {}),
            "labels": {"dativo-ingest": "connector"},
        }
        if workdir is not None:
            kwargs["volumes"] = {str(Path(workdir).resolve()): {"bind": CONTAINER_WORKDIR, "mode": "ro"}}
            kwargs["working_dir"] = CONTAINER_WORKDIR
        if self.network:
            kwargs["network_mode"] = self.network
        return kwargs

    def container_command(self, args: Sequence[str], *, workdir: Path | None = None) -> list[str]:
        """``args`` with every file path under ``workdir`` rewritten to its path inside the container."""
        out: list[str] = []
        root = Path(workdir).resolve() if workdir is not None else None
        for arg in args:
            path = Path(arg)
            if path.is_absolute() and root is not None and path.resolve().is_relative_to(root):
                out.append(f"{CONTAINER_WORKDIR}/{path.resolve().relative_to(root).as_posix()}")
            elif path.is_absolute() and path.exists():
                raise InfrastructureError(f"{arg} is outside the work folder mounted into the container "
                                          f"({root}); a docker connector only sees files under it")
            else:
                out.append(arg)
        return out

    def command(self, args: Sequence[str], *, workdir: Path | None = None) -> list[str]:
        """The equivalent ``docker run`` command line (for messages and for people)."""
        argv = ["docker", "run", "--rm", "-i", "--user", self.user]
        if workdir is not None:
            argv += ["-v", f"{Path(workdir).resolve()}:{CONTAINER_WORKDIR}:ro", "-w", CONTAINER_WORKDIR]
        if self.network:
            argv += ["--network", self.network]
        return [*argv, self.image, *self.container_command(args, workdir=workdir)]

    def start(self, args: Sequence[str], *, workdir: Path | None = None,
              env: Mapping[str, str] | None = None) -> ConnectorProcess:
        """Run the image with ``args`` and ``workdir`` mounted (paths rewritten)."""
        self.ensure_ready()
        kwargs = self.container_args(args, workdir=workdir, env=env)
        client = self.client()
        try:
            container = client.containers.create(**kwargs)
            container.start()
        except Exception as exc:  # noqa: BLE001
            raise InfrastructureError(f"cannot start a container of {self.image} ({type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
        return DockerProcess(container, f"docker: {self.image} {' '.join(list(args[:1]))}")
