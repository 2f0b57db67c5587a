"""airbyte-source-faker, the real connector from PyPI in its own venv, through `dativo_ingest run` into Iceberg.

The connector venvs live in a per-machine cache (``~/.cache/dativo-ingest-tests/connectors``): the first
test run on a machine installs them (about a minute each), later runs reuse them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import REPO, catalog, cli, make_project, table_rows, write_yaml


def connectors_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dativo-ingest-tests" / "connectors"


def install(name: str) -> dict[str, str]:
    """Install the manifest's connector ``name`` into the cache once; the env that points runs at it."""
    from dativo_ingest.engines.airbyte.manifest import connector_entry
    from dativo_ingest.engines.launchers.choose import LauncherSpec, choose_launcher

    entry = connector_entry(name, REPO)
    launcher = choose_launcher(LauncherSpec(package=entry.package, version=entry.version,
                                            executable=entry.executable), root=connectors_cache())
    started = time.monotonic()
    cold = not launcher.is_installed()  # type: ignore[attr-defined]
    launcher.ensure_ready()
    if cold:
        print(f"\ninstalled {entry.package}=={entry.version} in {time.monotonic() - started:.0f} s (cold)")
    return {"DATIVO_CONNECTORS_DIR": str(connectors_cache())}


@pytest.fixture(scope="module")
def faker_env() -> dict[str, str]:
    return install("faker")


STREAM_FIELDS: dict[str, list[dict[str, Any]]] = {
    "products": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                 {"name": "make", "type": "string"}, {"name": "model", "type": "string"},
                 {"name": "year", "type": "integer"}, {"name": "price", "type": "decimal(12,2)"},
                 {"name": "created_at", "type": "timestamptz"}, {"name": "updated_at", "type": "timestamptz"}],
    "purchases": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                  {"name": "user_id", "type": "long"}, {"name": "product_id", "type": "long"},
                  {"name": "added_to_cart_at", "type": "timestamptz"}, {"name": "purchased_at", "type": "timestamptz"},
                  {"name": "returned_at", "type": "timestamptz"}, {"name": "created_at", "type": "timestamptz"},
                  {"name": "updated_at", "type": "timestamptz"}],
}


def faker_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "project")
    shutil.copytree(REPO / "assets" / "faker", project / "assets" / "faker")
    (project / "jobs" / "acme").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "jobs" / "acme" / "faker_users_to_iceberg.yaml", project / "jobs" / "acme" / "faker_users.yaml")
    for stream, fields in STREAM_FIELDS.items():
        write_yaml(project / f"assets/faker/v1.0/{stream}.yaml", {
            "apiVersion": "v3.0.2", "kind": "DataContract", "name": f"faker_{stream}", "version": "1.0",
            "object": stream, "schema": fields})
        write_yaml(project / f"jobs/acme/faker_{stream}.yaml", {
            "tenant_id": "acme", "source_connector": "faker", "target_connector": "iceberg",
            "target_connector_path": "connectors/targets/iceberg.yaml", "asset": f"faker_{stream}",
            "asset_path": f"assets/faker/v1.0/{stream}.yaml", "source": {"objects": [stream]}})
    return project


def test_faker_streams_land_typed_and_a_second_run_resumes_from_state(tmp_path: Path,
                                                                      faker_env: dict[str, str]) -> None:
    project = faker_project(tmp_path)
    home = tmp_path / "home"
    out = cli("run", "--job-dir", "jobs/acme", cwd=project, home=home, env=faker_env, timeout=600)
    assert out.returncode == 0, out.stderr
    first = {json.loads(line)["table"]: json.loads(line) for line in out.stdout.strip().splitlines()}
    written = {t: r["rows_written"] for t, r in first.items()}
    # count 1000 (the recipe), seed 42: 1000 users, the 100 products, and the purchases faker makes for them
    assert written["acme.faker_users"] == 1000 and written["acme.faker_products"] == 100
    assert written["acme.faker_purchases"] > 0
    for identifier, rows in written.items():
        assert table_rows(home, identifier).num_rows == rows
    users = catalog(home).load_table("acme.faker_users")
    types = {f.name: str(f.field_type) for f in users.schema().fields}
    assert types["id"] == "long" and types["updated_at"] == "timestamptz" and types["address"] == "string"
    assert types["height"] == "double"
    row = table_rows(home, "acme.faker_users").to_pylist()[0]
    assert set(json.loads(row["address"])) >= {"city", "postal_code"}
    state = json.loads(users.current_snapshot().summary.additional_properties["dativo.state"])
    assert state["dialect"] == "airbyte.stream"
    assert state["streams"]["users"]["airbyte"]["stream_state"]["loop_offset"] == 1000
    assert state["streams"]["users"]["cursor"]["field"] == "updated_at"
    products = table_rows(home, "acme.faker_products")
    assert str(products.schema.field("price").type) == "decimal128(12, 2)"

    out = cli("run", "--job-dir", "jobs/acme", cwd=project, home=home, env=faker_env, timeout=600)
    assert out.returncode == 0, out.stderr
    second = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert {r["table"]: r["rows_read"] for r in second} == dict.fromkeys(written, 0)  # always_updated: false
    for identifier, rows in written.items():
        assert table_rows(home, identifier).num_rows == rows

    # the spec the engine used (cached in the venv) is the snapshot the offline mapping tests use
    cached = next(connectors_cache().glob("airbyte-source-faker-*/.dativo-airbyte-spec.json"))
    snapshot = json.loads((REPO / "tests/fixtures/airbyte/specs/faker.json").read_text())
    assert json.loads(cached.read_text()) == snapshot["connectionSpecification"]


def test_test_connector_passes_faker(tmp_path: Path, faker_env: dict[str, str]) -> None:
    out = cli("test-connector", "--engine", "airbyte", "--connector", "faker", "--streams", "users,purchases",
              cwd=REPO, home=tmp_path / "home", env=faker_env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("PASS spec", "PASS config", "PASS check: SUCCEEDED", "PASS discover: 3 stream(s)",
                 "PASS records: every checked record matches its stream's schema",
                 "PASS resume: a second read with the state returned only newer records (users: 0, purchases: 0)",
                 "users [incremental]: 200 records", "result: PASS"):
        assert line in out.stdout, out.stdout
