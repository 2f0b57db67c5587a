"""The Singer engine with a local tap we control: broken taps fail clearly and lose nothing committed before;
ACTIVATE_VERSION replaces the table; SDK BATCH files (jsonl.gz, parquet) are read directly."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml

TAP = textwrap.dedent('''
    """A tiny Singer tap for tests: its behaviour comes from its config ("mode", "rows")."""
    import argparse, gzip, json, sys

    p = argparse.ArgumentParser()
    p.add_argument("--config"); p.add_argument("--catalog"); p.add_argument("--state")
    p.add_argument("--discover", action="store_true"); p.add_argument("--about", action="store_true")
    p.add_argument("--format")
    a = p.parse_args()
    SCHEMA = {"type": "object", "properties": {
        "id": {"type": ["integer"]}, "v": {"type": ["string", "null"]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"}}}

    def out(msg):
        sys.stdout.write(json.dumps(msg) + "\\n")
        sys.stdout.flush()

    if a.about:
        out({"name": "tap-local", "capabilities": ["catalog", "discover", "state", "activate-version", "batch"]})
        sys.exit(0)
    if a.discover:
        out({"streams": [{"tap_stream_id": "events", "stream": "events", "schema": SCHEMA, "key_properties": ["id"],
                          "metadata": [{"breadcrumb": [], "metadata": {
                              "inclusion": "available", "valid-replication-keys": ["updated_at"]}}]}]})
        sys.exit(0)
    config = json.load(open(a.config))
    mode, rows = config.get("mode", "ok"), config["rows"]
    state = json.load(open(a.state)) if a.state else {}
    start = state.get("bookmarks", {}).get("events", {}).get("replication_key_value")
    if mode == "ignore_state":
        start = None
    rows = [r for r in rows if start is None or r[2] >= start or mode == "full_table"]

    def record(r, **extra):
        rid = "x" if mode == "bad_record" and r[0] == 2 else r[0]
        out({"type": "RECORD", "stream": "events", "record": {"id": rid, "v": r[1], "updated_at": r[2]}, **extra})

    def bookmark(value):
        out({"type": "STATE", "value": {"bookmarks": {"events": {"replication_key": "updated_at",
                                                                  "replication_key_value": value}}}})

    if mode == "record_before_schema":
        record(rows[0])
    out({"type": "SCHEMA", "stream": "events", "schema": SCHEMA, "key_properties": ["id"],
         "bookmark_properties": ["updated_at"]})
    if mode == "full_table":
        out({"type": "ACTIVATE_VERSION", "stream": "events", "version": 7})
        for r in rows:
            record(r, version=7)
        out({"type": "ACTIVATE_VERSION", "stream": "events", "version": 7})
        out({"type": "STATE", "value": {"bookmarks": {"events": {}}}})
        sys.exit(0)
    if mode == "batch":
        import pyarrow as pa, pyarrow.parquet as pq
        half = len(rows) // 2
        jl = config["batch_dir"] + "/part-1.jsonl.gz"
        with gzip.open(jl, "wt") as fh:
            for r in rows[:half]:
                fh.write(json.dumps({"id": r[0], "v": r[1], "updated_at": r[2]}) + "\\n")
        pqf = config["batch_dir"] + "/part-2.parquet"
        pq.write_table(pa.table({"id": [r[0] for r in rows[half:]], "v": [r[1] for r in rows[half:]],
                                 "updated_at": [r[2] for r in rows[half:]]}), pqf)
        out({"type": "BATCH", "stream": "events", "encoding": {"format": "jsonl", "compression": "gzip"},
             "manifest": ["file://" + jl]})
        out({"type": "BATCH", "stream": "events", "encoding": {"format": "parquet", "compression": None},
             "manifest": ["file://" + pqf]})
        bookmark(rows[-1][2])
        sys.exit(0)
    for i, r in enumerate(rows):
        if mode == "exit1" and i == len(rows) - 1:
            record(r)  # after the last STATE: must never be committed
            sys.stderr.write("tap-local: sync failed\\nboom: connection reset by peer\\n")
            sys.exit(1)
        record(r)
        if i % 2 == 1:
            bookmark(r[2])
            if mode == "bad_json":
                sys.stdout.write("Traceback (most recent call last): not a Singer message\\n")
                sys.exit(0)
    bookmark(rows[-1][2] if rows else start)
''')

ROWS = [[1, "a", "2024-01-01T00:00:00+00:00"], [2, "b", "2024-01-02T00:00:00+00:00"],
        [3, "c", "2024-01-03T00:00:00+00:00"]]
MORE = [[4, "d", "2024-01-04T00:00:00+00:00"], [5, "e", "2024-01-05T00:00:00+00:00"],
        [6, "f", "2024-01-06T00:00:00+00:00"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "project")
    (root / "taps").mkdir()
    (root / "taps" / "tap_local.py").write_text(TAP)
    write_yaml(root / "assets/custom/v1.0/events.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0", "object": "events",
        "schema": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                   {"name": "v", "type": "string"}, {"name": "updated_at", "type": "timestamptz"}]})
    write_yaml(root / "assets/custom/v1.0/event_log.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "event_log", "version": "1.0", "object": "events",
        "schema": [{"name": "id", "type": "long"}, {"name": "v", "type": "string"},
                   {"name": "updated_at", "type": "timestamptz"}]})
    return root


def _job(project: Path, mode: str, rows: list, asset: str = "events", **extra) -> Path:
    job = {"tenant_id": "acme", "source_connector": "singer_tap", "target_connector": "iceberg",
           "asset_path": f"assets/custom/v1.0/{asset}.yaml",
           "extractor": {"name": "tap-local", "executable": "taps/tap_local.py",
                         "config": {"mode": mode, "rows": rows, "batch_dir": str(project)}},
           "source": {"incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}}
    job.update(extra)
    return write_yaml(project / "jobs/acme/events.yaml", job)


def _run(project: Path, home: Path, job: Path):
    return cli("run", "--config", str(job), cwd=project, home=home)


def _ok(out) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _snapshot(home: Path, table: str = "acme.events") -> tuple[int, dict]:
    snap = catalog(home).load_table(table).current_snapshot()
    return snap.snapshot_id, json.loads(snap.summary.additional_properties["dativo.state"])


def _ids(home: Path, table: str = "acme.events") -> list[int]:
    return sorted(r["id"] for r in table_rows(home, table).to_pylist())


@pytest.mark.parametrize(("mode", "expected", "kept"), [
    # the tap resends row 3 (>= its bookmark), sends row 4 and a STATE, then breaks: row 4 is kept with that
    # STATE, what came after it is not
    ("bad_json", "broke the Singer protocol at line 5: not a JSON message: 'Traceback (most recent call last)", 4),
    ("exit1", "exited with code 1: tap-local: sync failed | boom: connection reset by peer", 4),
    ("record_before_schema", "broke the Singer protocol at line 1: RECORD for stream 'events' before its SCHEMA", 3),
])
def test_a_broken_tap_fails_clearly_and_keeps_exactly_what_its_last_state_covers(project, tmp_path, mode, expected,
                                                                                  kept):
    home = tmp_path / "home"
    assert _ok(_run(project, home, _job(project, "ok", ROWS)))["rows_written"] == 3
    before = _snapshot(home)
    assert before[1]["streams"]["events"]["singer"]["bookmark"]["replication_key_value"] == ROWS[-1][2]

    out = _run(project, home, _job(project, mode, ROWS + MORE))
    assert out.returncode == 2
    message = [line for line in out.stderr.splitlines() if line.startswith("ERROR")][-1]
    assert expected in message, message
    assert "the run fails; nothing after the tap's last STATE is committed" in message
    assert "Traceback" not in out.stderr.replace("'Traceback (most recent call last)", "")
    assert _ids(home) == list(range(1, kept + 1))
    after = _snapshot(home)
    bookmark = (ROWS + MORE)[kept - 1][2]
    assert after[1]["streams"]["events"]["singer"]["bookmark"]["replication_key_value"] == bookmark
    if kept == 3:
        assert after == before  # nothing was sent before the failure: neither data nor state moved

    # the tap fixed, the next run continues from the committed place: no gap, no duplicate
    summary = _ok(_run(project, home, _job(project, "ok", ROWS + MORE)))
    assert summary["rows_written"] == 6 - kept
    assert _ids(home) == [1, 2, 3, 4, 5, 6]


def test_a_tap_dying_mid_stream_keeps_what_was_committed_at_its_last_state(project, tmp_path):
    home, log = tmp_path / "home", "acme.event_log"
    _ok(_run(project, home, _job(project, "ok", ROWS, asset="event_log")))
    # commit at every checkpoint: the tap resends row 3 (>= its bookmark), sends row 4 and a STATE, then
    # rows 5 and 6 and dies: 4 is committed with its STATE, 5 and 6 are not
    target = {"commit_every_rows": 1, "chunk_rows": 1}
    out = _run(project, home, _job(project, "exit1", ROWS + MORE, asset="event_log", target=target))
    assert out.returncode == 2 and "exited with code 1" in out.stderr
    assert _ids(home, log) == [1, 2, 3, 4]
    _, state = _snapshot(home, log)
    assert state["streams"]["events"]["singer"]["bookmark"]["replication_key_value"] == MORE[0][2]
    assert state["streams"]["events"]["cursor"]["value"] == MORE[0][2]
    summary = _ok(_run(project, home, _job(project, "ok", ROWS + MORE, asset="event_log")))
    assert summary["rows_written"] == 2 and _ids(home, log) == [1, 2, 3, 4, 5, 6]


def test_activate_version_replaces_the_table(project, tmp_path):
    home = tmp_path / "home"
    _ok(_run(project, home, _job(project, "ok", ROWS)))
    # row 1 is gone from the source; a full-table sync with ACTIVATE_VERSION leaves exactly rows 2 and 3
    job = _job(project, "full_table", [[2, "B", ROWS[1][2]], ROWS[2]],
               source={})  # no cursor: the tap syncs the whole table
    summary = _ok(_run(project, home, job))
    assert summary["rows_written"] == 2
    rows = sorted((r["id"], r["v"]) for r in table_rows(home, "acme.events").to_pylist())
    assert rows == [(2, "B"), (3, "c")]


def test_sdk_batch_messages_are_read_from_their_files(project, tmp_path):
    home = tmp_path / "home"
    summary = _ok(_run(project, home, _job(project, "batch", ROWS + MORE)))
    assert summary["rows_written"] == 6
    data = table_rows(home, "acme.events")
    assert sorted(zip(data.column("id").to_pylist(), data.column("v").to_pylist(), strict=True)) == \
        [(r[0], r[1]) for r in ROWS + MORE]
    assert str(data.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"


def test_a_tap_that_is_not_there_is_one_line(project, tmp_path):
    job = _job(project, "ok", ROWS)
    text = job.read_text().replace("taps/tap_local.py", "taps/nope")
    job.write_text(text)
    out = _run(project, tmp_path / "home", job)
    assert out.returncode == 2
    assert "connector executable 'taps/nope' not found" in out.stderr and "Traceback" not in out.stderr
    assert sys.executable  # the local tap runs with the current Python when it is a .py file


@pytest.mark.parametrize(("mode", "ok", "finding"), [
    ("ok", True, "PASS resume: a second sync with the state returned no older records (events: 1)"),
    ("ignore_state", False, "FAIL resume: stream 'events': the sync from the state returned 2 record(s) older"),
    ("bad_record", False, "FAIL records: stream 'events': 1 of 3 checked records do not match its SCHEMA "
                          "(first: 'id' is not of type integer)"),
])
def test_test_connector_reports_what_a_tap_does_wrong(project, tmp_path, mode, ok, finding):
    conf = project / "tap.json"
    conf.write_text(json.dumps({"mode": mode, "rows": ROWS}))
    out = cli("test-connector", "--engine", "singer", "--connector", "tap-local", "--executable",
              "taps/tap_local.py", "--config", str(conf), cwd=project, home=tmp_path / "home")
    assert out.returncode == (0 if ok else 2), out.stdout + out.stderr
    assert finding in out.stdout, out.stdout
    assert "PASS discover: 1 stream(s): events" in out.stdout


def test_check_refuses_a_setting_the_tap_requires_and_the_job_does_not_give(project, tmp_path):
    """The tap is there (a local executable): check asks it --about and compares its required settings."""
    about = '"capabilities": ["catalog", "discover", "state", "activate-version", "batch"]'
    assert about in TAP
    (project / "taps" / "tap_local.py").write_text(TAP.replace(
        about, about + ', "settings": {"type": "object", "required": ["rows", "api_url"]}'))
    job = _job(project, "ok", ROWS)
    out = cli("check", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert out.stderr.strip() == (f"ERROR: {job}: source.connection: the Singer tap tap-local needs the setting(s) "
                                  "api_url, which the job does not give (set them in source.connection (mapped by "
                                  "engines/singer.yaml) or in extractor.config)")
    data = yaml.safe_load(job.read_text())
    data["extractor"]["config"]["api_url"] = "http://127.0.0.1:1"
    job.write_text(yaml.safe_dump(data))
    assert cli("check", "--config", str(job), cwd=project, home=tmp_path / "home").returncode == 0
