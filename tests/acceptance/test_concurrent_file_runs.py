"""Two runs of the same plain-file job at once: as for Iceberg (test_concurrent_runs.py), one commit wins; the
other re-applies its merge on top of the winner's manifest (re-merging against its live files) when its state
covers the winner's, or fails with one line and exit 2 — never a duplicate, never an older cursor.

The first tests drive two file sinks in one process, so the interleaving is exact (including two runs that
publish the same manifest sequence); the others start two CLI runs together.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dativo_ingest.sinks.base import ConcurrentCommitError, Head
from dativo_ingest.sinks.files.manifest import latest_manifest, manifest_names
from dativo_ingest.sinks.files.sink import FileSink, FileTarget
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.storage.stores import ObjectStore, local_store
from tests.acceptance.helpers import REPO, make_project
from tests.acceptance.test_concurrent_runs import pg_project, pg_table, run_pair  # noqa: F401 - pg_table: a fixture
from tests.acceptance.test_db_exactly_once import COLUMNS, assert_same_rows, source_rows, start_run
from tests.pg import needs_postgres, sql

SCHEMA_ARROW = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


# -- two sinks in one process: the exact interleaving ---------------------------------------------------------


class _ListedTooEarly(FileSink):
    """A run that listed the manifests just before the other run published its own (the head it sees is stale
    once): both then publish the same sequence."""

    stale: Head | None = None

    def _head(self) -> Head:
        if self.stale is not None:
            head, self.stale = self.stale, None
            return head
        return super()._head()


def _target(root: Path) -> FileTarget:
    return FileTarget(local_store(root, "target.connection.path"), "parquet", 1024 * 1024, ["acme"])


def _sink(root: Path, run_id: str, write_mode: str = "merge", cls: type[FileSink] = FileSink) -> FileSink:
    target = _target(root)
    sink = cls(target, target.dataset("t"), SCHEMA_ARROW, run_id=run_id, ingest_date=date(2024, 5, 6),
               primary_key=["id"] if write_mode == "merge" else [], write_mode=write_mode)
    sink.current_state()  # what a run does first: its state comes from the dataset as it is now
    return sink


def _rows(ids: range, v: str) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64()), "v": [v] * len(ids)}, schema=SCHEMA_ARROW)


def _state(**streams: Any) -> StateEnvelope:
    return StateEnvelope(engine="native", dialect="native", streams=streams)


def _cursor(value: str) -> dict[str, Any]:
    return {"cursor": {"field": "updated_at", "value": value}}


def _dataset(root: Path) -> ObjectStore:
    return _target(root).dataset("t")


def _table(root: Path) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """(id, v) of every live row, sorted, and the committed state."""
    manifest = latest_manifest(_dataset(root))
    assert manifest is not None
    data = pa.concat_tables([pq.read_table(root / "acme/t" / f["path"]) for f in manifest.files])
    rows = sorted(zip(data.column("id").to_pylist(), data.column("v").to_pylist(), strict=True))
    return rows, json.loads(manifest.state)


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*.parquet")}


def test_merge_whose_cursor_is_not_behind_is_reapplied_on_top(tmp_path):
    first, second = _sink(tmp_path, "r1"), _sink(tmp_path, "r2")
    first.write(_rows(range(0, 100), "first"))
    second.write(_rows(range(50, 150), "second"))
    first.commit(_state(orders=_cursor("2024-01-02T00:00:00+00:00")))
    result = second.commit(_state(orders=_cursor("2024-01-03T00:00:00+00:00")))
    assert result.snapshot_id == 2
    rows, state = _table(tmp_path)
    assert rows == [(i, "first") for i in range(50)] + [(i, "second") for i in range(50, 150)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2024-01-03T00:00:00+00:00"
    assert _files(tmp_path) == {str(tmp_path / "acme/t" / f["path"]) for f in latest_manifest(_dataset(tmp_path)).files}
    # the re-applied writer's next commit builds on its own commit: no conflict left
    second.write(_rows(range(150, 160), "second"))
    second.commit(_state(orders=_cursor("2024-01-04T00:00:00+00:00")))
    assert len(_table(tmp_path)[0]) == 160


def test_merge_whose_cursor_is_behind_fails_cleanly_and_keeps_the_winners_commit(tmp_path):
    first, second = _sink(tmp_path, "r1"), _sink(tmp_path, "r2")
    first.write(_rows(range(0, 100), "first"))
    second.write(_rows(range(0, 80), "second"))
    first.commit(_state(orders=_cursor("2024-01-03T00:00:00+00:00")))
    with pytest.raises(ConcurrentCommitError) as failure:
        second.commit(_state(orders=_cursor("2024-01-02T00:00:00+00:00")))
    message = str(failure.value)
    assert "another run committed" in message and "run the job again" in message and "\n" not in message
    rows, state = _table(tmp_path)
    assert rows == [(i, "first") for i in range(100)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2024-01-03T00:00:00+00:00"
    assert not [f for f in _files(tmp_path) if "/r2-" in f]  # the loser's data files are gone
    assert len(manifest_names(_dataset(tmp_path))) == 1


def test_append_never_reapplies_on_top_of_another_commit(tmp_path):
    first, second = _sink(tmp_path, "r1", "append"), _sink(tmp_path, "r2", "append")
    first.write(_rows(range(0, 10), "first"))
    second.write(_rows(range(0, 10), "second"))
    first.commit(_state(orders=_cursor("5")))
    with pytest.raises(ConcurrentCommitError, match="another run committed"):
        second.commit(_state(orders=_cursor("9")))
    assert _table(tmp_path)[0] == [(i, "first") for i in range(10)]


def test_deletes_computed_before_the_other_commit_are_not_reapplied(tmp_path):
    first = _sink(tmp_path, "r1")
    first.write(_rows(range(0, 10), "first"))
    first.commit(_state(orders=_cursor("1")))
    third, fourth = _sink(tmp_path, "r3"), _sink(tmp_path, "r4")
    third.write(_rows(range(5, 15), "third"))
    fourth.delete_keys(pa.table({"id": pa.array([0], pa.int64())}))
    assert fourth.pending_deletes == 1
    third.commit(_state(orders=_cursor("2")))
    with pytest.raises(ConcurrentCommitError, match="the rows it deletes"):
        fourth.commit(_state(orders=_cursor("3")))
    assert [i for i, _ in _table(tmp_path)[0]] == list(range(15))  # id 0 is still there


def test_two_runs_publishing_the_same_sequence_leave_one_manifest_and_both_commits(tmp_path):
    first = _sink(tmp_path, "r1")
    second = _sink(tmp_path, "r2", cls=_ListedTooEarly)
    second.stale = Head(None, None)  # it saw the dataset empty: it publishes sequence 1 too
    first.write(_rows(range(0, 10), "first"))
    second.write(_rows(range(5, 20), "second"))
    first.commit(_state(orders=_cursor("1")))
    second.commit(_state(orders=_cursor("2")))  # finds first's sequence 1: withdraws its own, re-applies on top
    names = manifest_names(_dataset(tmp_path))
    assert [n.split("-", 1)[0] for n in names] == ["000000000001", "000000000002"]
    assert names[0].endswith("-r1.json") and names[1].endswith("-r2.json")
    rows, state = _table(tmp_path)
    assert rows == [(i, "first") for i in range(5)] + [(i, "second") for i in range(5, 20)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2"


# -- two CLI runs at once ---------------------------------------------------------------------------------


def _to_local_files(job: Path) -> None:
    data = yaml.safe_load(job.read_text())
    data["target_connector"] = "local"
    data.pop("target_connector_path", None)
    data["target"] = {**(data.get("target") or {}), "connection": {"path": "out"}}
    job.write_text(yaml.safe_dump(data, sort_keys=False))


def _live(project: Path, folders: tuple[str, ...], columns: list[str]) -> list[tuple]:
    """The rows of the dataset ``out/<folders>`` as the newest manifest lists them."""
    manifest = latest_manifest(local_store(project / "out", "target.connection.path").at(*folders))
    assert manifest is not None
    data = pa.concat_tables([pq.read_table(project.joinpath("out", *folders, f["path"]), columns=columns)
                             for f in manifest.files])
    return list(zip(*(data.column(c).to_pylist() for c in columns), strict=True))


def test_two_concurrent_runs_of_the_demo_csv_job_to_local_files(tmp_path):
    project = make_project(tmp_path / "project")
    for part in ("jobs/acme/csv_employee_to_iceberg.yaml", "assets/csv/v1.0/employee.yaml",
                 "data/employee/employees.csv"):
        (project / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / part, project / part)
    job = project / "jobs/acme/csv_employee_to_iceberg.yaml"
    _to_local_files(job)
    csv = project / "data/employee/employees.csv"
    home = tmp_path / "home"
    for round_no in (1, 2):
        print(f"round {round_no} (demo CSV job to local files, merge by employee_id):")
        outcomes = run_pair(project, job, home, tmp_path / f"logs{round_no}")
        if any(code == 2 for code, _, _ in outcomes):
            assert start_run(project, job, home, tmp_path / f"logs{round_no}" / "again").wait(timeout=120) == 0
        landed = _live(project, ("hr", "employee", "csv_employee"), ["employee_id", "last_name"])
        lines = csv.read_text().strip().splitlines()[1:]
        assert sorted(i for i, _ in landed) == sorted(int(line.split(",")[0]) for line in lines)  # each once
        assert dict(landed) == {int(line.split(",")[0]): line.split(",")[2] for line in lines}
        # next round: one employee renamed, one hired
        rows = csv.read_text().strip().splitlines()
        first = rows[1].split(",")
        first[2] = f"Renamed{round_no}"
        hired = rows[-1].split(",")
        hired[0] = str(int(hired[0]) + 1)
        csv.write_text("\n".join([rows[0], ",".join(first), *rows[2:], ",".join(hired)]) + "\n")


@needs_postgres
def test_two_concurrent_postgres_merge_runs_to_local_files_leave_the_dataset_equal_to_the_source(
        tmp_path, pg_table):  # noqa: F811 - the fixture
    project, job = pg_project(tmp_path, pg_table, merge=True)
    _to_local_files(job)
    home = tmp_path / "home"
    for round_no in (1, 2):  # a new dataset, then an incremental run over inserts and updates
        print(f"round {round_no} (merge to local files):")
        outcomes = run_pair(project, job, home, tmp_path / f"logs{round_no}")
        if any(code == 2 for code, _, _ in outcomes):
            assert start_run(project, job, home, tmp_path / f"logs{round_no}" / "again").wait(timeout=120) == 0
        assert_same_rows(_live(project, ("acme", "orders"), list(COLUMNS)), source_rows(pg_table))
        manifest = latest_manifest(local_store(project / "out", "target.connection.path").at("acme", "orders"))
        cursor = json.loads(manifest.state)["streams"]["orders"]["cursor"]["value"]
        assert cursor == sql(f"SELECT max(updated_at) FROM {pg_table}")[0][0].isoformat()
        base = f"timestamptz '2025-01-0{round_no} 00:00:00+00'"
        sql(f"""INSERT INTO {pg_table} SELECT g, 'new', 1.5, 1, 'round {round_no}', {base} + (g / 3) * interval '1 ms'
                FROM generate_series({100_000 + round_no * 10_000}, {100_000 + round_no * 10_000 + 4_999}) g""")
        sql(f"""UPDATE {pg_table} SET note = 'updated {round_no}', updated_at = {base} + interval '1 hour'
                WHERE id % 101 = {round_no}""")
