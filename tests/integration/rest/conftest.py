"""Servers for the native REST engine's tests: the HubSpot and Slack test servers (threads of the test process)
and localstripe (PyPI, in its own venv under the test cache, one process per session on 127.0.0.1, stopped by
process group)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import REPO, make_project, write_yaml
from tests.integration.rest.fake_api import HubSpot, Slack
from tests.stand_ins import CACHE, free_port, stop_process

LOCALSTRIPE_VERSION = "1.15.10"
LOCALSTRIPE_KEY = "sk_test_localstripe_example"
#: localstripe keeps its store in /tmp/localstripe.pickle and listens on every interface; this wrapper keeps the
#: store in memory (parallel test runs would share the file) and listens on 127.0.0.1 only
_LOCALSTRIPE_MAIN = """
import sys
from aiohttp import web
from localstripe import resources, server
resources.Store.dump_to_disk = lambda self: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


@pytest.fixture
def hubspot() -> Iterator[HubSpot]:
    api = HubSpot()
    with api.running():
        yield api


@pytest.fixture
def slack() -> Iterator[Slack]:
    api = Slack()
    with api.running():
        yield api


def localstripe_python() -> Path:
    """The python of a venv holding localstripe, made once per machine in the test cache (under a lock)."""
    venv = CACHE / f"localstripe-{LOCALSTRIPE_VERSION}"
    python = venv / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "localstripe.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "-q", f"localstripe=={LOCALSTRIPE_VERSION}"],
                           check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
            (venv / ".installed").write_text(LOCALSTRIPE_VERSION)
    return python


class LocalStripe:
    """A running localstripe: its URL, and a few calls of Stripe's API to make data."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        import json
        from urllib.parse import urlencode

        body = urlencode(data or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Authorization": f"Bearer {LOCALSTRIPE_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
            text = response.read()
        return json.loads(text) if text else None

    def customers(self, n: int, prefix: str = "user") -> list[str]:
        ids = []
        for i in range(n):
            made = self.call("POST", "/v1/customers", {"email": f"{prefix}{i}@example.com", "name": f"{prefix} {i}",
                                                       "metadata[tier]": "gold" if i % 2 else "silver",
                                                       "address[city]": "Berlin", "address[country]": "DE"})
            ids.append(made["id"])
        return ids

    def flush(self) -> None:
        self.call("DELETE", "/_config/data")


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    python = localstripe_python()
    root = tmp_path_factory.mktemp("localstripe")
    (root / "main.py").write_text(_LOCALSTRIPE_MAIN)
    port = free_port()
    log = root / "localstripe.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(python), str(root / "main.py"), str(port)], cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = LocalStripe(f"http://127.0.0.1:{port}")

    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"localstripe exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                server.call("GET", "/v1/customers?limit=1")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer in 60 s: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        stop_process(proc)


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> LocalStripe:
    """localstripe with an empty store."""
    localstripe_server.flush()
    return localstripe_server


def rest_project(root: Path, **secrets: str) -> Path:
    """A project with the repo's registry, recipes, assets and jobs, and the acme tenant's secrets given."""
    project = make_project(root)
    shutil.copytree(REPO / "assets", project / "assets")
    shutil.copytree(REPO / "jobs", project / "jobs")
    folder = project / "secrets" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "api.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return project


def edit_yaml(path: Path, change: Any) -> Path:
    """Load a YAML file, let ``change`` modify the data, write it back."""
    import yaml

    data = yaml.safe_load(path.read_text())
    change(data)
    return write_yaml(path, data)
