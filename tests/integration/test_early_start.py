"""A connector started before the catalog is read (issue 16, "start fast"), with real connectors.

The run starts the connector with the local state mirror's state while it reads the committed state; it reads the
connector only when the two agree, else it kills it and starts it again with the committed state. These runs prove
the order from the run's own debug log lines (never from timings), and that a stale or missing mirror lands exactly
the rows the committed state asks for.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml
from tests.integration.test_airbyte_faker import faker_env  # noqa: F401 - the fixture
from tests.integration.test_singer_spreadsheets import tap_env  # noqa: F401 - the fixture

EARLY = "started early with the state of the local mirror"
ADOPTED = "which is the committed one: reading it"
RESTARTED = "stopped unread, starting it again with the committed state"
COMMITTED_READ = "committed state of"


def _faker_job(project: Path, count: int) -> Path:
    return write_yaml(project / "jobs/acme/users.yaml", {
        "tenant_id": "acme", "source_connector": "faker", "source_connector_path": "connectors/sources/faker.yaml",
        "target_connector": "iceberg", "target_connector_path": "connectors/targets/iceberg.yaml",
        "asset": "faker_users", "asset_path": "assets/faker/v1.0/users.yaml",
        "source": {"objects": ["users"], "connection": {"count": count}}, "logging": {"level": "DEBUG"},
        # append: a connector that read rows again would land them twice (merge would hide it)
        "target": {"write_mode": "append"}})


def _faker_project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "project")
    shutil.copytree(REPO / "assets" / "faker", project / "assets" / "faker")
    return project


def _run(project: Path, job: Path, home: Path, env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The run's result and its log messages, in order."""
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    messages = [json.loads(line)["msg"] for line in out.stderr.splitlines() if line.startswith("{")]
    return json.loads(out.stdout.strip().splitlines()[-1]), messages


def _index(messages: list[str], text: str) -> int:
    return next(i for i, m in enumerate(messages) if text in m)


def _starts(messages: list[str]) -> list[str]:
    """The connector processes the run started (the launcher logs each)."""
    return [m for m in messages if m.startswith("started ") and "(pid " in m]


def _mirror(home: Path, job: str) -> Path:
    return home / "state" / "acme" / f"{job}.json"


def _no_work_folders(home: Path) -> None:
    """No connector work folder (config files with credentials) outlives the run."""
    root = home / "tmp" / "connectors"
    assert not root.exists() or not any(root.iterdir()), sorted(p.name for p in root.iterdir())


def test_mirror_equal_to_the_commit_starts_the_connector_once_before_the_catalog_is_read(
        tmp_path: Path, faker_env: dict[str, str]) -> None:  # noqa: F811
    project, home = _faker_project(tmp_path), tmp_path / "home"
    job = _faker_job(project, 300)
    first, messages = _run(project, job, home, faker_env)  # the catalog is not cached yet: no early start
    assert first["rows_written"] == 300
    assert not any(EARLY in m for m in messages)
    assert _index(messages, COMMITTED_READ) < _index(messages, next(m for m in _starts(messages) if " read (" in m))

    second, messages = _run(project, job, home, faker_env)  # the mirror is what was committed
    assert second["rows_read"] == 0
    starts = _starts(messages)
    assert len(starts) == 1 and " read (" in starts[0], starts  # spec and catalog cached: only the read runs
    assert _index(messages, starts[0]) < _index(messages, COMMITTED_READ)
    assert _index(messages, EARLY) < _index(messages, COMMITTED_READ) < _index(messages, ADOPTED)
    assert not any(RESTARTED in m for m in messages)
    _no_work_folders(home)


def test_a_stale_mirror_kills_the_early_connector_and_lands_exactly_the_rows_after_the_commit(
        tmp_path: Path, faker_env: dict[str, str]) -> None:  # noqa: F811
    project, home = _faker_project(tmp_path), tmp_path / "home"
    job = _faker_job(project, 300)
    _run(project, job, home, faker_env)
    mirror = json.loads(_mirror(home, "users").read_text())
    mirror["streams"] = {}  # a mirror from before the commit: faker without state sends every user again
    _mirror(home, "users").write_text(json.dumps(mirror))

    second, messages = _run(project, job, home, faker_env)
    ids = table_rows(home, "acme.faker_users").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 301))  # no duplicate, no loss
    assert second["rows_read"] == 0 and second["rows_written"] == 0
    assert _index(messages, EARLY) < _index(messages, COMMITTED_READ) < _index(messages, RESTARTED)
    assert not any(ADOPTED in m for m in messages)
    reads = [m for m in _starts(messages) if " read (" in m]
    assert len(reads) == 2, reads  # the early one (killed unread), then the one with the committed state
    _no_work_folders(home)


def test_no_mirror_with_a_committed_state_reads_after_the_commit(tmp_path: Path,
                                                                 faker_env: dict[str, str]) -> None:  # noqa: F811
    project, home = _faker_project(tmp_path), tmp_path / "home"
    job = _faker_job(project, 300)
    _run(project, job, home, faker_env)
    _mirror(home, "users").unlink()  # a fresh machine (or STATE_DIR) with the same catalog

    second, messages = _run(project, job, home, faker_env)
    assert sorted(table_rows(home, "acme.faker_users").column("id").to_pylist()) == list(range(1, 301))
    assert second["rows_read"] == 0
    assert _index(messages, EARLY) < _index(messages, COMMITTED_READ) < _index(messages, RESTARTED)
    _no_work_folders(home)


def test_singer_tap_starts_early_and_a_stale_mirror_restarts_it(tmp_path: Path, fixtures_dir: Path,
                                                                tap_env: dict[str, str]) -> None:  # noqa: F811
    project = make_project(tmp_path / "project")
    seed = tmp_path / "person.csv"
    shutil.copy(fixtures_dir / "seeds/adventureworks/Person.csv", seed)
    write_yaml(project / "assets/csv/v1.0/person.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "person", "version": "1.0", "object": "person",
        "schema": [{"name": "BusinessEntityID", "type": "long", "primary_key": True, "required": True},
                   {"name": "FirstName", "type": "string"}, {"name": "LastName", "type": "string"}]})
    job = write_yaml(project / "jobs/acme/person.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "engine": "singer",
        "asset_path": "assets/csv/v1.0/person.yaml", "source": {"files": [{"path": str(seed), "object": "person"}]},
        "logging": {"level": "DEBUG"}, "target": {"write_mode": "append"}})
    home = tmp_path / "home"
    first, _ = _run(project, job, home, tap_env)
    assert first["rows_written"] == 10

    again, messages = _run(project, job, home, tap_env)  # the mirror is the commit: the early tap is read
    assert again["rows_read"] == 0
    assert _index(messages, EARLY) < _index(messages, COMMITTED_READ) < _index(messages, ADOPTED)
    assert len(_starts(messages)) == 1

    stale = _mirror(home, "person").read_text()
    with seed.open("a") as fh:  # a new row; the tap's bookmark is the file's modified time
        fh.write("99999,EM,0,,New,,Person,,0,,,00000000-0000-0000-0000-000000000000,2020-01-01 00:00:00\n")
    third, _ = _run(project, job, home, tap_env)  # another machine's run, say: it commits the new bookmark
    assert third["rows_read"] == 11
    _mirror(home, "person").write_text(stale)  # this machine's mirror is behind the table
    rows = table_rows(home, "acme.person").num_rows

    fourth, messages = _run(project, job, home, tap_env)  # the early tap (older bookmark) would read the file again
    assert table_rows(home, "acme.person").num_rows == rows
    assert fourth["rows_read"] == 0
    assert _index(messages, EARLY) < _index(messages, COMMITTED_READ) < _index(messages, RESTARTED)
    _no_work_folders(home)
