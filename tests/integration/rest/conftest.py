"""Servers for the native REST engine's tests: the HubSpot and Slack test servers (threads of the test process)
and localstripe (PyPI, in its own venv under the test cache, one process per session on 127.0.0.1, stopped by
process group)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import REPO, make_project, write_yaml
from tests.integration.rest.fake_api import HubSpot, Slack
from tests.stand_ins import LocalStripe, run_localstripe


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


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with run_localstripe(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


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
