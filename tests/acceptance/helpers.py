"""Run the CLI as a user does, in throw-away projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pyiceberg.catalog.sql import SqlCatalog

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path, home: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    full_env.update({"DATIVO_HOME": str(home), **(env or {})})
    full_env.pop("STATE_DIR", None)
    return subprocess.run([sys.executable, "-m", "dativo_ingest", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def make_project(root: Path) -> Path:
    """A project folder with the repo's registry and connector recipes."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "registry", root / "registry")
    shutil.copytree(REPO / "connectors", root / "connectors")
    return root


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rewrite_v1_job(fixtures: Path, name: str, project: Path, *, embedded_target: bool = False) -> Path:
    """An original job with only its ``tests/fixtures/`` paths rewritten (and, if asked, the target
    swapped for the embedded Iceberg catalog, to run an S3/MinIO job without an object store)."""
    text = (fixtures / "jobs" / f"{name}.yaml").read_text().replace("tests/fixtures/", f"{fixtures}/")
    path = project / "jobs" / "test_tenant" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if embedded_target:
        data = yaml.safe_load(text)
        data["target_connector"] = "iceberg"
        data["target_connector_path"] = "connectors/iceberg.yaml"
        data.setdefault("target", {}).pop("connection", None)
        return write_yaml(path, data)
    path.write_text(text)
    return path


def catalog(home: Path) -> SqlCatalog:
    return SqlCatalog("dativo", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=f"file://{home / 'warehouse'}")


def table_rows(home: Path, identifier: str) -> Any:
    """The table as Arrow, or None when it does not exist."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog(home).load_table(identifier).scan().to_arrow()
    except NoSuchTableError:
        return None
