"""HubSpot contacts through the native REST engine, against the HubSpot test server, with the CLI as a user runs it:
the shipped job, incremental runs, 429/500 retried, 401 and a body that is not JSON as one line, kills
mid-pagination resumed with nothing lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.acceptance.helpers import cli, table_rows
from tests.integration.rest.conftest import edit_yaml, rest_project
from tests.integration.rest.fake_api import HUBSPOT_TOKEN, HubSpot, as_json, not_json

JOB = "jobs/acme/hubspot_contacts_native.yaml"
SEARCH = "/crm/v3/objects/contacts/search"


def _project(tmp_path: Path, api: HubSpot, token: str = HUBSPOT_TOKEN) -> Path:
    return rest_project(tmp_path / "project", HUBSPOT_ACCESS_TOKEN=token, HUBSPOT_API_BASE=api.url)


def _summary(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_shipped_job_lands_the_contacts_and_a_second_run_only_new_or_changed(tmp_path: Path,
                                                                                  hubspot: HubSpot) -> None:
    hubspot.add("contacts", 250)
    project, home = _project(tmp_path, hubspot), tmp_path / "home"
    first = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    assert first["rows_written"] == 250
    rows = table_rows(home, "acme.hubspot_contacts").sort_by("id")
    assert rows.num_rows == 250 and rows.column("email")[0].as_py() == "contact1@example.com"
    assert str(rows.schema.field("updatedAt").type) == "timestamp[us, tz=UTC]"

    hubspot.update("contacts", "7", email="new7@example.com")
    hubspot.update("contacts", "42", firstname="Renamed")
    hubspot.add("contacts", 2)
    before = len(hubspot.seen(SEARCH))
    second = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    assert second["rows_written"] == 4
    rows = {r["id"]: r for r in table_rows(home, "acme.hubspot_contacts").to_pylist()}
    assert len(rows) == 252 and rows["7"]["email"] == "new7@example.com" and rows["42"]["firstname"] == "Renamed"
    # the second run asked only for contacts modified after the committed cursor (ms since the epoch)
    ask = hubspot.seen(SEARCH)[before].body
    value = ask["filterGroups"][0]["filters"][0]["value"]
    committed = json.loads((home / "state/acme/hubspot_contacts_native.json").read_text())
    assert int(value) > 1_709_280_000_000 and committed["streams"]["contacts"]["rest"] is None


def test_429_with_retry_after_and_a_500_are_retried(tmp_path: Path, hubspot: HubSpot) -> None:
    hubspot.add("contacts", 150)
    hubspot.fail_next(SEARCH, as_json(429, {"status": "error", "message": "You have reached your secondly limit.",
                                            "errorType": "RATE_LIMIT"}, **{"Retry-After": "1"}),
                      as_json(500, {"status": "error", "message": "internal error"}))
    project, home = _project(tmp_path, hubspot), tmp_path / "home"
    out = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    assert out["rows_written"] == 150
    assert [r.status for r in hubspot.seen(SEARCH)] == [429, 500, 200, 200]


def test_retries_are_logged_with_the_path_only(tmp_path: Path, hubspot: HubSpot) -> None:
    hubspot.add("contacts", 5)
    hubspot.fail_next(SEARCH, as_json(503, {"message": "down"}, **{"Retry-After": "0"}))
    project, home = _project(tmp_path, hubspot), tmp_path / "home"
    out = cli("run", "--config", JOB, "--log-format", "text", cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    assert f"stream contacts: POST {SEARCH}: HTTP 503; attempt 2 of 6" in out.stderr
    assert HUBSPOT_TOKEN not in out.stderr and "?" not in out.stderr.split(SEARCH)[1][:5]


def test_a_refused_token_is_one_line_naming_the_recipe_and_the_secret(tmp_path: Path, hubspot: HubSpot) -> None:
    secret = "pat-wrong-token-value-123"
    project = _project(tmp_path, hubspot, token=secret)
    for command in ("check", "run"):
        out = cli(command, "--config", JOB, cwd=project, home=tmp_path / "home")
        assert out.returncode == 2
        line = out.stderr.strip().splitlines()[-1]
        assert "connectors/sources/hubspot.yaml: the API refused the credentials: HTTP 401 on GET " \
               "/crm/v3/objects/contacts" in line
        assert "HUBSPOT_ACCESS_TOKEN" in line and secret not in out.stderr and "internal error" not in out.stderr
    assert not (tmp_path / "home" / "warehouse" / "acme").exists()  # refused before any table was made


def test_check_makes_one_cheap_authenticated_request(tmp_path: Path, hubspot: HubSpot) -> None:
    hubspot.add("contacts", 30)
    out = cli("check", "--config", JOB, cwd=_project(tmp_path, hubspot), home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    seen = hubspot.seen()
    assert [(r.method, r.path, r.query) for r in seen] == [("GET", "/crm/v3/objects/contacts", {"limit": "1"})]


def test_a_body_that_is_not_json_is_one_line_and_nothing_is_committed(tmp_path: Path, hubspot: HubSpot) -> None:
    hubspot.add("contacts", 120)
    project, home = _project(tmp_path, hubspot), tmp_path / "home"
    hubspot.fail_next(SEARCH, None, not_json(200))  # the first page is fine, the second an HTML page of a proxy
    out = cli("run", "--config", JOB, cwd=project, home=home)
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line == (f"ERROR: stream 'contacts': POST {SEARCH} answered HTTP 200 with a body that is not JSON "
                    "(text/html, 46 bytes) (is connection.endpoint the API's base URL?)")
    assert table_rows(home, "acme.hubspot_contacts") is None  # one commit at the end: nothing of it


def _kill_project(tmp_path: Path, api: HubSpot) -> Path:
    """The shipped job with small pages, a fast rate limit, commits every 30 rows and no primary key dedup
    (``append``), so that a lost or repeated page shows as a missing or duplicated id."""
    project = _project(tmp_path, api)

    def recipe(data: dict[str, Any]) -> None:
        data["rate_limits"] = {"requests_per_second": 500, "burst_size": 50}
        data["api"]["streams"]["contacts"]["json"]["limit"] = 10

    edit_yaml(project / "connectors/sources/hubspot.yaml", recipe)
    edit_yaml(project / JOB, lambda d: d.setdefault("target", {}).update(write_mode="append", commit_every_rows=30))
    return project


def test_a_kill_mid_pagination_resumes_at_the_next_page(tmp_path: Path, hubspot: HubSpot) -> None:
    hubspot.add("contacts", 200)
    project, home = _kill_project(tmp_path, hubspot), tmp_path / "home"
    killed = cli("run", "--config", JOB, cwd=project, home=home, env={"DATIVO_FAULT": "after-commit"})
    assert killed.returncode == -signal.SIGKILL
    committed = table_rows(home, "acme.hubspot_contacts")
    assert 30 <= committed.num_rows < 200
    searches = len(hubspot.seen(SEARCH))

    # a second kill at a moment of the wall clock, while pages are being read slowly
    hubspot.delay = 0.05
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env["DATIVO_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "dativo_ingest", "run", "--config", JOB], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(hubspot.seen(SEARCH)) < searches + 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    hubspot.delay = 0.0
    resumed_from = hubspot.seen(SEARCH)[searches].body  # the first request after the first kill
    assert int(resumed_from.get("after") or 0) == committed.num_rows  # it asked for the page after the commit

    before_final = table_rows(home, "acme.hubspot_contacts").num_rows
    final = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    rows = table_rows(home, "acme.hubspot_contacts")
    ids = rows.column("id").to_pylist()
    assert sorted(ids, key=int) == [str(i) for i in range(1, 201)]  # every contact once: none lost, none twice
    assert final["rows_written"] == 200 - before_final
    state = json.loads((home / "state/acme/hubspot_contacts_native.json").read_text())["streams"]["contacts"]
    assert state["rest"] is None and state["cursor"]["field"] == "updatedAt"


def _bad_recipe(tmp_path: Path, api: HubSpot, change: Any) -> str:
    project = _project(tmp_path, api)
    edit_yaml(project / "connectors/sources/hubspot.yaml", change)
    out = cli("check", "--config", JOB, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and "internal error" not in out.stderr
    return out.stderr.strip().splitlines()[-1]


def test_a_bad_api_section_is_one_line_naming_the_recipe_and_the_field(tmp_path: Path, hubspot: HubSpot) -> None:
    def variable(data: dict[str, Any]) -> None:
        data["api"]["streams"]["contacts"]["params"] = {"base": "${HUBSPOT_API_BASE}"}

    assert _bad_recipe(tmp_path / "a", hubspot, variable) == (
        "ERROR: connectors/sources/hubspot.yaml: api: ${HUBSPOT_API_BASE} is not expanded here (put it in "
        "connection_template (e.g. key: \"${HUBSPOT_API_BASE}\") and write {connection.key})")

    def typo(data: dict[str, Any]) -> None:
        data["api"]["paginator"]["cursor_pth"] = data["api"]["paginator"].pop("cursor_path")

    assert _bad_recipe(tmp_path / "b", hubspot, typo).startswith(
        "ERROR: connectors/sources/hubspot.yaml: api.paginator.cursor_pth: unknown key (did you mean 'cursor_path'?)")

    def cursor_without_incremental(data: dict[str, Any]) -> None:
        data["api"]["streams"]["contacts"].pop("incremental")

    assert _bad_recipe(tmp_path / "c", hubspot, cursor_without_incremental) == (
        "ERROR: connectors/sources/hubspot.yaml: api.streams.contacts.json.filterGroups[0].filters[0].value: "
        "{cursor} needs incremental.cursor_field on the stream (declare incremental: {cursor_field: FIELD} or "
        "remove {cursor})")


def test_oauth2_refresh_token_rotated_by_the_server_is_kept_for_the_next_run(tmp_path: Path,
                                                                             hubspot: HubSpot) -> None:
    hubspot.add("contacts", 12)
    project = rest_project(tmp_path / "project", HUBSPOT_ACCESS_TOKEN="unused", HUBSPOT_API_BASE=hubspot.url,
                           HUBSPOT_CLIENT_ID="client-1", HUBSPOT_CLIENT_SECRET="client-secret-1",
                           HUBSPOT_REFRESH_TOKEN="rt-1")

    def oauth(data: dict[str, Any]) -> None:
        data["connection_template"].update(client_id="${HUBSPOT_CLIENT_ID}", client_secret="${HUBSPOT_CLIENT_SECRET}",
                                           refresh_token="${HUBSPOT_REFRESH_TOKEN}")
        data["api"]["auth"] = {"type": "oauth2", "token_url": "{connection.endpoint}/oauth/v1/token",
                               "client_id": "{connection.client_id}", "client_secret": "{connection.client_secret}",
                               "refresh_token": "{connection.refresh_token}"}

    edit_yaml(project / "connectors/sources/hubspot.yaml", oauth)
    home = tmp_path / "home"
    first = cli("run", "--config", JOB, cwd=project, home=home)
    assert _summary(first)["rows_written"] == 12
    kept = home / "rest/tokens/acme/hubspot.json"
    assert kept.stat().st_mode & 0o777 == 0o600 and hubspot.refresh_token in kept.read_text()
    hubspot.add("contacts", 1)
    second = cli("run", "--config", JOB, cwd=project, home=home)  # rt-1 no longer works: the kept one must
    assert _summary(second)["rows_written"] == 1
    mirror = (home / "state/acme/hubspot_contacts_native.json").read_text()
    for text in (first.stdout + first.stderr, second.stdout + second.stderr, mirror):
        assert "rt-" not in text and "at-1" not in text and "client-secret-1" not in text
