"""Real object-storage servers for the tests: one of each per test session, started only when a test asks for
``seaweedfs`` or ``azurite`` (tests/conftest.py loads this module as a plugin). How they start and stop lives in
``tests/stand_ins.py``, which the smoke script uses too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stand_ins import Azurite, MissingServer, SeaweedFS, run_azurite, run_seaweedfs

__all__ = ["Azurite", "SeaweedFS", "azurite_server", "seaweedfs_server"]


@pytest.fixture(scope="session", name="seaweedfs")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """``weed mini``: S3 on a free port (bucket ``test-bucket``) and the Iceberg REST catalog (``warehouse``)."""
    try:
        with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
    except MissingServer as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session", name="azurite")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's Blob service on a free port (account ``devstoreaccount1`` with its development key)."""
    try:
        with run_azurite(tmp_path_factory.mktemp("azurite")) as server:
            yield server
    except MissingServer as exc:
        pytest.fail(str(exc))
