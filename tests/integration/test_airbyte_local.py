"""The Airbyte engine end to end with a local connector (a small script speaking the protocol).

Runs the real CLI, runner and Iceberg catalog; the connector is ``tests/fixtures/airbyte/fake_source.py``
started by the ``local`` launcher (as a connector under development would be).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml

FAKE = Path(__file__).resolve().parents[1] / "fixtures" / "airbyte" / "fake_source.py"

REGISTRY_ENTRY = """
  events:  # test-only: the fake Airbyte source
    roles: [source]
    default_engine: airbyte
    engines_supported: [airbyte]
    supports_incremental: true
"""
#: the registry only lists an engine that reads the connector: its entry (the job gives the executable)
MANIFEST_ENTRY = "connectors:\n  events: {executable: source-events, passthrough: true}\n"


def executable(tmp_path: Path) -> Path:
    """The fake source as an executable file (a shebang to this Python)."""
    path = tmp_path / "source-events"
    if not path.exists():
        path.write_text(f"#!{sys.executable}\n" + FAKE.read_text())
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    if root.exists():
        return root
    make_project(root)
    with open(root / "registry" / "connectors.yaml", "a") as fh:
        fh.write(REGISTRY_ENTRY)
    (root / "engines").mkdir()
    (root / "engines" / "airbyte.yaml").write_text(MANIFEST_ENTRY)
    write_yaml(root / "assets/events/v1.0/events.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0", "object": "events",
        "schema": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                   {"name": "name", "type": "string"}, {"name": "updated_at", "type": "timestamptz"},
                   {"name": "payload", "type": "json"}]})
    return root


def job(tmp_path: Path, connection: dict[str, Any], *, name: str = "events") -> Path:
    root = project(tmp_path)
    return write_yaml(root / f"jobs/acme/{name}.yaml", {
        "tenant_id": "acme", "source_connector": "events", "target_connector": "iceberg",
        "target_connector_path": "connectors/targets/iceberg.yaml",
        "engine": {"name": "airbyte", "options": {"airbyte": {"executable": str(executable(tmp_path))}}},
        "asset": "events", "asset_path": "assets/events/v1.0/events.yaml",
        "source": {"objects": ["events"], "connection": connection}})


def run(tmp_path: Path, connection: dict[str, Any], *, expect: int = 0, name: str = "events") -> Any:
    path = job(tmp_path, connection, name=name)
    out = cli("run", "--config", str(path), "--log-format", "text", cwd=project(tmp_path), home=tmp_path / "home")
    assert out.returncode == expect, out.stderr
    return out


def ids(tmp_path: Path) -> list[int]:
    table = table_rows(tmp_path / "home", "acme.events")
    return sorted(table.column("id").to_pylist()) if table is not None else []


def state(tmp_path: Path) -> dict[str, Any]:
    """The state envelope committed in the table's current snapshot."""
    snapshot = catalog(tmp_path / "home").load_table("acme.events").current_snapshot()
    return json.loads(snapshot.summary.additional_properties["dativo.state"])


def test_rows_land_typed_and_the_next_run_resumes_from_the_connectors_state(tmp_path: Path) -> None:
    run(tmp_path, {"rows": 5, "state_every": 2})
    assert ids(tmp_path) == [1, 2, 3, 4, 5]
    row = table_rows(tmp_path / "home", "acme.events").to_pylist()[0]
    assert json.loads(row["payload"]) == {"n": row["id"]}  # nested objects land as JSON text
    assert str(row["updated_at"].tzinfo) == "UTC"
    st = state(tmp_path)
    assert st["engine"] == "airbyte" and st["dialect"] == "airbyte.stream"
    assert st["streams"]["events"]["airbyte"]["stream_state"] == {"updated_at": "2024-01-01T00:00:05+00:00"}
    assert st["streams"]["events"]["cursor"] == {"field": "updated_at", "value": "2024-01-01T00:00:05+00:00"}
    out = run(tmp_path, {"rows": 7, "state_every": 2})
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["rows_read"] == 2  # only 6 and 7: the connector was given its state back
    assert ids(tmp_path) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(("mode", "said"), [
    ("crash", "Traceback: boom, the API went away (exit code 1)"),
    ("trace_error", "Invalid API key (the connector's own words)"),
    ("bad_json", 'exited with code 1 after a line that is not an Airbyte message: {"type": "RECORD", "record": '
                 '{"stream": "ev'),
])
def test_a_failing_connector_commits_exactly_the_rows_before_its_last_state(tmp_path: Path, mode: str,
                                                                            said: str) -> None:
    out = run(tmp_path, {"rows": 5, "mode": mode}, expect=2)
    error = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert len(error) == 1 and "airbyte connector 'events' failed" in error[0] and said in error[0], out.stderr
    assert ids(tmp_path) == [1, 2, 3]  # 4 and 5 came after the last STATE: not committed
    assert state(tmp_path)["streams"]["events"]["cursor"]["value"] == "2024-01-01T00:00:03+00:00"
    run(tmp_path, {"rows": 5})  # the next run resumes after 3 and completes
    assert ids(tmp_path) == [1, 2, 3, 4, 5]


def test_lines_that_are_not_messages_are_logged_and_ignored(tmp_path: Path) -> None:
    out = run(tmp_path, {"rows": 3, "mode": "junk"})
    assert "not an Airbyte message, ignored: DEBUG: a print() the developer forgot" in out.stderr
    assert ids(tmp_path) == [1, 2, 3]


@pytest.mark.parametrize(("mode", "dialect"), [("global", "airbyte.global"), ("legacy", "airbyte.legacy")])
def test_global_and_legacy_states_are_kept_and_given_back(tmp_path: Path, mode: str, dialect: str) -> None:
    run(tmp_path, {"rows": 4, "mode": mode})
    st = state(tmp_path)
    assert st["dialect"] == dialect
    if mode == "global":
        assert st["shared"]["airbyte_global"]["shared_state"] == {"lsn": 4}
        assert st["streams"]["events"]["airbyte"]["stream_state"] == {"updated_at": "2024-01-01T00:00:04+00:00"}
    else:
        assert st["shared"]["airbyte_legacy"] == {"events": {"updated_at": "2024-01-01T00:00:04+00:00"}}
    assert st["streams"]["events"]["cursor"]["value"] == "2024-01-01T00:00:04+00:00"
    out = run(tmp_path, {"rows": 6, "mode": mode})
    assert json.loads(out.stdout.strip().splitlines()[-1])["rows_read"] == 2
    assert ids(tmp_path) == [1, 2, 3, 4, 5, 6]


def test_a_control_config_update_is_kept_privately_for_the_next_runs(tmp_path: Path) -> None:
    out = run(tmp_path, {"rows": 2, "mode": "control", "token": "first-token-abc"})
    kept = tmp_path / "home" / "airbyte" / "control" / "acme" / "events.json"
    assert kept.is_file() and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text())["config"]["token"] == "refreshed-token-123"
    assert "refreshed-token-123" not in out.stderr and "first-token-abc" not in out.stderr
    out = run(tmp_path, {"rows": 2, "mode": "control", "token": "first-token-abc"})
    assert "using the config the connector updated earlier" in out.stderr
    out = run(tmp_path, {"rows": 2, "mode": "control", "token": "a-new-token-from-the-user"})
    assert "using the config the connector updated earlier" not in out.stderr  # the user's change wins


def test_a_config_that_breaks_the_connectors_spec_is_one_line_naming_the_keys(tmp_path: Path) -> None:
    out = run(tmp_path, {"rows": "many", "state_every": 2}, expect=2)
    assert out.stderr.strip().splitlines()[-1] == (
        f"ERROR: {project(tmp_path) / 'jobs/acme/events.yaml'}: source.connection: the config of Airbyte connector "
        "'events' does not match its spec: 'rows' must be integer (got string) (set the keys in the recipe's "
        "connection_template or the job's source.connection (mapped by engines/airbyte.yaml), or raw under "
        "engine.options.airbyte.config)")
    out = run(tmp_path, {"state_every": "2"}, expect=2)  # "2" from ${VAR} is coerced; rows is missing
    assert "does not match its spec: missing 'rows'" in out.stderr
    assert table_rows(tmp_path / "home", "acme.events") is None


def test_an_unknown_stream_names_the_available_ones(tmp_path: Path) -> None:
    path = job(tmp_path, {"rows": 1})
    data = path.read_text().replace("- events", "- evnets")
    path.write_text(data)
    out = cli("run", "--config", str(path), cwd=project(tmp_path), home=tmp_path / "home")
    assert out.returncode == 2
    assert "stream(s) evnets not in the connector's catalog (available: events)" in out.stderr


def test_test_connector_reports_the_defects_of_a_broken_connector(tmp_path: Path) -> None:
    root = project(tmp_path)
    exe = executable(tmp_path)
    config = tmp_path / "broken.json"
    config.write_text(json.dumps({"rows": 3, "mode": "broken"}))
    out = cli("test-connector", "--engine", "airbyte", "--connector", "events", "--executable", str(exe),
              "--config", str(config), cwd=root, home=tmp_path / "home")
    assert out.returncode == 2, out.stdout + out.stderr
    report = out.stdout
    assert "FAIL protocol: 1 line(s) on stdout are not Airbyte messages (first: 'this is not JSON')" in report
    assert ("FAIL records: stream 'events': 2 of 3 checked records do not match its schema "
            "(first: 'id' is not of type integer; 'id' is not of type integer)") in report
    assert "FAIL state: stream 'events' emitted 3 records and never a STATE" in report
    assert "result: FAIL" in report

    good = tmp_path / "good.yaml"
    good.write_text("rows: 4\nstate_every: 2\n")
    out = cli("test-connector", "--engine", "airbyte", "--connector", "events", "--executable", str(exe),
              "--config", str(good), "--json", cwd=root, home=tmp_path / "home")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["streams"]["events"]["records"] == 4 and report["streams"]["events"]["states"] == 3
    assert report["streams"]["events"]["resumed_records"] == 0
    assert {f["check"] for f in report["findings"]} >= {"spec", "config", "check", "discover", "read", "records",
                                                         "resume"}


def test_the_catalog_is_discovered_once_per_config_until_refreshed(tmp_path: Path) -> None:
    calls = tmp_path / "discover.log"
    connection = {"rows": 2, "discover_log": str(calls)}
    run(tmp_path, connection)
    run(tmp_path, connection)
    assert calls.read_text().count("discover") == 1
    out = cli("run", "--config", str(job(tmp_path, connection)), "--refresh-catalog", cwd=project(tmp_path),
              home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    assert calls.read_text().count("discover") == 2
    cached = list((tmp_path / "home" / "airbyte" / "catalogs").glob("events-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())[0]["name"] == "events"
