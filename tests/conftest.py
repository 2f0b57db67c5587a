from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = (REPO.parent / "shared" / "fixtures" / "dativo-v1").resolve()
SEEDS = FIXTURES / "seeds"
pytest_plugins = ["tests.servers"]  # session fixtures seaweedfs / azurite: one server each per test session


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYICEBERG_DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE", "true")


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"the original project's fixtures are not at {FIXTURES}")
    return FIXTURES


@pytest.fixture
def dativo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DATIVO_HOME (embedded catalog, warehouse, state mirror) per test."""
    home = tmp_path / "home"
    monkeypatch.setenv("DATIVO_HOME", str(home))
    monkeypatch.delenv("STATE_DIR", raising=False)
    return home
