"""The docker launcher against a fake Docker client (no daemon here), and the choice of launcher."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import orjson
import pytest

from dativo_ingest.engines.airbyte.connector import AirbyteConnector
from dativo_ingest.engines.airbyte.manifest import connector_entry
from dativo_ingest.engines.launchers.choose import LauncherSpec, choose_launcher
from dativo_ingest.engines.launchers.docker import CONTAINER_WORKDIR, DockerLauncher, docker_sdk
from dativo_ingest.engines.launchers.local import LocalLauncher
from dativo_ingest.engines.launchers.venv import VenvLauncher
from dativo_ingest.errors import ConfigError, InfrastructureError

REPO = Path(__file__).resolve().parents[2]


class ImageNotFound(Exception):
    pass


class FakeContainer:
    def __init__(self, stdout: list[bytes], stderr: list[bytes], status: int) -> None:
        self.stdout, self.stderr, self.status = stdout, stderr, status
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def logs(self, *, stdout: bool, stderr: bool, stream: bool, follow: bool) -> Any:
        assert stream and follow and stdout != stderr
        return iter(self.stdout if stdout else self.stderr)

    def wait(self, timeout: float | None = None) -> dict[str, int]:
        self.calls.append("wait")
        return {"StatusCode": self.status}

    def kill(self) -> None:
        self.calls.append("kill")

    def remove(self, force: bool = False) -> None:
        self.calls.append(f"remove(force={force})")


class FakeClient:
    def __init__(self, stdout: list[bytes] | None = None, *, have_image: bool = True, stderr: list[bytes] | None = None,
                 status: int = 0) -> None:
        self.created: list[dict[str, Any]] = []
        self.pulled: list[tuple[str, str]] = []
        self.container = FakeContainer(stdout or [], stderr or [], status)
        client = self

        class Images:
            def get(self, image: str) -> object:
                if not have_image:
                    raise ImageNotFound(image)
                return object()

            def pull(self, repository: str, tag: str) -> object:
                client.pulled.append((repository, tag))
                return object()

        class Containers:
            def create(self, **kwargs: Any) -> FakeContainer:
                client.created.append(kwargs)
                return client.container

        self.images, self.containers = Images(), Containers()


def test_the_container_is_docker_run_rm_i_with_the_workdir_read_only_and_paths_rewritten(tmp_path: Path) -> None:
    client = FakeClient([b'{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}\n'])
    launcher = DockerLauncher("airbyte/source-faker:7.2.1", client=client)
    config = tmp_path / "config.json"
    config.write_text("{}")
    proc = launcher.start(["read", "--config", str(config), "--catalog", str(tmp_path / "catalog.json")],
                          workdir=tmp_path, env={"LOG_LEVEL": "INFO"})
    assert client.created == [{
        "image": "airbyte/source-faker:7.2.1",
        "command": ["read", "--config", f"{CONTAINER_WORKDIR}/config.json",
                    "--catalog", f"{CONTAINER_WORKDIR}/catalog.json"],
        "stdin_open": True, "detach": True, "user": f"{os.getuid()}:{os.getgid()}",
        "environment": {"LOG_LEVEL": "INFO"}, "labels": {"dativo-ingest": "connector"},
        "volumes": {str(tmp_path.resolve()): {"bind": CONTAINER_WORKDIR, "mode": "ro"}},
        "working_dir": CONTAINER_WORKDIR,
    }]
    assert list(proc.lines()) == [b'{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}\n']
    assert proc.wait() == 0
    assert client.container.calls == ["start", "wait", "remove(force=True)"]  # --rm
    assert launcher.command(["spec"], workdir=tmp_path) == [
        "docker", "run", "--rm", "-i", "--user", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{tmp_path.resolve()}:{CONTAINER_WORKDIR}:ro", "-w", CONTAINER_WORKDIR,
        "airbyte/source-faker:7.2.1", "spec"]


def test_output_split_across_chunks_becomes_lines_and_stderr_is_kept(tmp_path: Path) -> None:
    client = FakeClient([b'{"a"', b': 1}\n{"b": 2}\n{"c"', b": 3}"], stderr=[b"warn\nTrace", b"back: boom\n"],
                        status=1)
    proc = DockerLauncher("img:1", client=client, network="host").start(["read"], workdir=tmp_path)
    assert list(proc.lines()) == [b'{"a": 1}\n', b'{"b": 2}\n', b'{"c": 3}']
    assert proc.wait() == 1 and proc.stderr_tail() == ["warn", "Traceback: boom"]
    assert client.created[0]["network_mode"] == "host"
    proc.kill()  # already removed: nothing more
    assert client.container.calls.count("remove(force=True)") == 1


def test_a_missing_image_is_pulled_and_files_outside_the_workdir_are_refused(tmp_path: Path) -> None:
    client = FakeClient(have_image=False)
    DockerLauncher("airbyte/source-file:0.5.39", client=client).ensure_ready()
    assert client.pulled == [("airbyte/source-file", "0.5.39")]
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (tmp_path / "work").mkdir()
    with pytest.raises(InfrastructureError, match="outside the work folder mounted into the container"):
        DockerLauncher("img:1", client=FakeClient()).container_args(["read", "--config", str(outside)],
                                                                   workdir=tmp_path / "work")


def test_a_connector_runs_through_the_docker_launcher(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path))
    spec = {"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "required": ["count"]}}}
    client = FakeClient([orjson.dumps(spec) + b"\n"])
    with AirbyteConnector("faker", DockerLauncher("airbyte/source-faker:7.2.1", client=client)) as conn:
        assert conn.spec() == {"type": "object", "required": ["count"]}
        assert client.created[0]["command"] == ["spec"]
        assert client.created[0]["volumes"] == {str(conn.workdir.resolve()): {"bind": CONTAINER_WORKDIR, "mode": "ro"}}
    assert not conn.workdir.exists()


def test_a_read_streams_the_containers_records_in_blocks(tmp_path: Path, monkeypatch) -> None:
    # the read path takes a process's blocks(): a container's are its log lines, not a local pipe
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path))
    client = FakeClient([b'{"type": "RECORD", "record": {"stream": "s", "data": {"i": 1}}}\n', b'{"type": "REC',
                         b'ORD", "record": {"stream": "s", "data": {"i": 2}}}\n'])
    with AirbyteConnector("faker", DockerLauncher("airbyte/source-faker:7.2.1", client=client)) as conn:
        assert b"".join(conn.read_blocks(["read"])).count(b'"RECORD"') == 2
        assert conn.finish()[0] == 0


def test_without_the_sdk_or_the_daemon_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker → ImportError
    with pytest.raises(InfrastructureError, match=r"pip install 'dativo-ingest\[docker\]'"):
        docker_sdk()
    with pytest.raises(InfrastructureError, match="Docker SDK"):
        DockerLauncher("img:1").ensure_ready()

    def from_env() -> None:
        raise ConnectionError("Error while fetching server API version: [Errno 2] No such file or directory")

    monkeypatch.setitem(sys.modules, "docker", types.SimpleNamespace(from_env=from_env))
    with pytest.raises(InfrastructureError, match="cannot reach the Docker daemon .*launcher: venv"):
        DockerLauncher("img:1").ensure_ready()


def test_the_launcher_is_venv_when_the_package_exists_else_docker_unless_the_job_says(tmp_path: Path) -> None:
    faker = connector_entry("faker", REPO)
    assert faker.package == "airbyte-source-faker" and faker.image == "airbyte/source-faker"
    launcher = choose_launcher(LauncherSpec(package=faker.package, version=faker.version, image=faker.image),
                               root=tmp_path)
    assert isinstance(launcher, VenvLauncher) and launcher.pip_url == "airbyte-source-faker==7.2.1"
    assert launcher.executable == "source-faker" and launcher.venv == tmp_path / "airbyte-source-faker-7.2.1"
    docker = connector_entry("faker", REPO, {"launcher": "docker"})
    launcher = choose_launcher(LauncherSpec(launcher=docker.launcher, image=docker.image, version=docker.version),
                               docker_client=FakeClient())
    assert isinstance(launcher, DockerLauncher) and launcher.image == "airbyte/source-faker:7.2.1"
    assert isinstance(choose_launcher(LauncherSpec(image="acme/source-x:2")), DockerLauncher)
    local = connector_entry("faker", REPO, {"executable": "/opt/dev/source-faker"})
    assert local.launcher == "local"
    assert isinstance(choose_launcher(LauncherSpec(launcher="local", executable="/opt/dev/x")), LocalLauncher)
    with pytest.raises(ConfigError, match="engine.options.launcher: unknown launcher 'podman'"):
        choose_launcher(LauncherSpec(launcher="podman"))
    with pytest.raises(ConfigError, match="the docker launcher needs an image"):
        choose_launcher(LauncherSpec(launcher="docker", package="airbyte-source-x"))
    with pytest.raises(ConfigError, match="connector 'nope' has no entry"):
        connector_entry("nope", REPO)
