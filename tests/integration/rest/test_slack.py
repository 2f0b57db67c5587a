"""The seed guide's §4.3 Slack example through the native REST engine, against the Slack test server: the job and
asset exactly as the guide writes them plus the recipe they imply; channels → messages per channel with one
cursor per channel; ``ok: false`` errors; a kill mid-pagination of a child stream resumed exactly."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from tests.acceptance.helpers import cli, table_rows
from tests.integration.rest.conftest import edit_yaml, rest_project
from tests.integration.rest.fake_api import SLACK_TOKEN, Slack, ratelimited

JOB = "jobs/acme/slack_messages_to_iceberg.yaml"
HISTORY = "/api/conversations.history"
GUIDE = Path(__file__).resolve().parents[4] / "shared" / "SETUP_GUIDE.md"

#: §4.3 "Example: Adding a New API Source", as the guide writes it
GUIDE_ASSET = """\
# assets/slack/v1.0/messages.yaml
$schema: schemas/odcs/dativo-odcs-3.0.2-extended.schema.json
apiVersion: v3.0.2
kind: DataContract
name: slack_messages
version: "1.0"
source_type: slack
object: messages
target:
  file_format: parquet
  partitioning: [ingest_date]
schema:
  - name: message_id
    type: string
    required: true
  - name: channel_id
    type: string
    required: true
  - name: user_id
    type: string
    required: true
  - name: text
    type: string
    required: true
  - name: timestamp
    type: timestamp
    required: true
"""
GUIDE_JOB = """\
# jobs/acme/slack_messages_to_iceberg.yaml
tenant_id: acme
source_connector: slack
source_connector_path: connectors/sources/slack.yaml
target_connector: iceberg
target_connector_path: connectors/targets/iceberg.yaml
asset: slack_messages
asset_path: assets/slack/v1.0/messages.yaml
source:
  objects: [messages]
  incremental:
    lookback_days: 7
"""


def _project(tmp_path: Path, api: Slack, token: str = SLACK_TOKEN) -> Path:
    return rest_project(tmp_path / "project", SLACK_BOT_TOKEN=token, SLACK_API_BASE=api.url + "/api")


def _summary(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _workspace(api: Slack) -> None:
    api.add_channel("C0GENERAL", "general")
    api.add_channel("C0RANDOM", "random")
    api.post("C0GENERAL", 30)
    api.post("C0RANDOM", 25)
    api.post("C0RANDOM", 2, bot=True)


def test_the_guides_example_runs_as_written(tmp_path: Path, slack: Slack) -> None:
    if GUIDE.is_file():  # the texts below are the guide's own
        text = GUIDE.read_text()
        assert GUIDE_JOB in text and "\n".join(GUIDE_ASSET.splitlines()[1:]) in text
    _workspace(slack)
    project, home = _project(tmp_path, slack), tmp_path / "home"
    (project / "assets/slack/v1.0/messages.yaml").write_text(GUIDE_ASSET)
    (project / JOB).write_text(GUIDE_JOB)
    assert cli("check", "--config", JOB, cwd=project, home=home).returncode == 0
    out = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    assert out["rows_written"] == 57
    rows = table_rows(home, "acme.slack_messages").to_pylist()
    bot = [r for r in rows if r["user_id"] == "B0BOT"]
    assert len(bot) == 2 and {r["channel_id"] for r in bot} == {"C0RANDOM"}
    first = min(rows, key=lambda r: float(r["message_id"]))
    assert first["timestamp"] == datetime.fromtimestamp(float(first["message_id"]), timezone.utc).replace(tzinfo=None)
    assert first["text"].startswith("message 0 in C0GENERAL")


def test_the_shipped_job_keeps_a_cursor_per_channel_and_merges_the_lookback(tmp_path: Path, slack: Slack) -> None:
    _workspace(slack)
    project, home = _project(tmp_path, slack), tmp_path / "home"
    assert yaml.safe_load((project / JOB).read_text()) == yaml.safe_load(GUIDE_JOB)
    _summary(cli("run", "--config", JOB, cwd=project, home=home))
    state = json.loads((home / "state/acme/slack_messages_to_iceberg.json").read_text())["streams"]["messages"]
    assert set(state["partitions"]) == {"C0GENERAL", "C0RANDOM"} and state["rest"] is None
    newest_general = state["partitions"]["C0GENERAL"]["value"]

    slack.post("C0GENERAL", 3)
    before = len(slack.seen(HISTORY))
    second = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    rows = table_rows(home, "acme.slack_messages")
    keys = list(zip(rows.column("channel_id").to_pylist(), rows.column("message_id").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 60  # the 7-day lookback re-read is merged by key, not duplicated
    assert second["rows_read"] == 60
    asked = {r.query["channel"]: r.query for r in slack.seen(HISTORY)[before:]}
    week = 7 * 86400
    cursor = datetime.fromisoformat(newest_general).replace(tzinfo=timezone.utc).timestamp()
    assert int(asked["C0GENERAL"]["oldest"]) == int(cursor - week)


def test_ok_false_errors_ratelimits_and_a_refused_token(tmp_path: Path, slack: Slack) -> None:
    _workspace(slack)
    slack.fail_next(HISTORY, ratelimited(1))
    project, home = _project(tmp_path, slack), tmp_path / "home"
    assert _summary(cli("run", "--config", JOB, cwd=project, home=home))["rows_written"] == 57
    assert slack.seen(HISTORY)[0].status == 429

    bad = _project(tmp_path / "bad", slack, token="xoxb-revoked-value-0042")
    out = cli("run", "--config", JOB, cwd=bad, home=tmp_path / "home2")
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "connectors/sources/slack.yaml: the API refused the credentials: error 'invalid_auth' on POST " \
           "/api/auth.test (stream 'check')" in line
    assert "SLACK_BOT_TOKEN" in line and "xoxb-revoked" not in out.stderr


def test_a_kill_in_the_middle_of_a_channel_resumes_there(tmp_path: Path, slack: Slack) -> None:
    _workspace(slack)
    project, home = _project(tmp_path, slack), tmp_path / "home"

    def recipe(data: dict[str, Any]) -> None:
        data["rate_limits"] = {"requests_per_second": 500, "burst_size": 50}
        data["api"]["streams"]["messages"]["params"]["limit"] = 4

    edit_yaml(project / "connectors/sources/slack.yaml", recipe)
    edit_yaml(project / JOB, lambda d: d.update(target={"write_mode": "append", "commit_every_rows": 10}))
    killed = cli("run", "--config", JOB, cwd=project, home=home, env={"DATIVO_FAULT": "after-commit"})
    assert killed.returncode == -signal.SIGKILL
    committed = table_rows(home, "acme.slack_messages").num_rows
    assert 10 <= committed < 57
    before = len(slack.seen(HISTORY))
    _summary(cli("run", "--config", JOB, cwd=project, home=home))
    rows = table_rows(home, "acme.slack_messages")
    keys = list(zip(rows.column("channel_id").to_pylist(), rows.column("message_id").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 57  # append mode: a page read twice would show twice
    first_resumed = slack.seen(HISTORY)[before]
    assert first_resumed.query["channel"] == "C0GENERAL" and first_resumed.query.get("cursor")


def test_a_job_wide_cursor_field_is_refused_for_a_stream_with_a_cursor_per_channel(tmp_path: Path,
                                                                                 slack: Slack) -> None:
    project = _project(tmp_path, slack)
    edit_yaml(project / JOB, lambda d: d["source"]["incremental"].update(cursor_field="timestamp"))
    out = cli("check", "--config", JOB, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"ERROR: {JOB}: source.incremental.cursor_field: stream 'messages' keeps one cursor per channels record; "
        "a single job-wide cursor would skip records (remove it: connectors/sources/slack.yaml names the stream's "
        "cursor)")
