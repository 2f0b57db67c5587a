"""Two runs of the same job at the same time: one commit wins; the other re-applies its merge on top (when its
state covers the winner's) or fails with one line and exit 2 — never a duplicate, never an older cursor.

The same rule for an Iceberg table and a plain-file dataset (``sinks/base.py``). The first tests drive two sinks
in one process, so the interleaving is exact; the others start two CLI runs together (PostgreSQL merge and
append jobs, the demo CSV job) and check the table or dataset against the source.
"""

from __future__ import annotations

import json
import shutil
import signal
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from dativo_ingest.sinks.base import ConcurrentCommitError, Head, Sink
from dativo_ingest.sinks.files.manifest import latest_manifest, manifest_names
from dativo_ingest.sinks.files.sink import FileSink, FileTarget
from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.storage.stores import ObjectStore, local_store
from tests.acceptance.helpers import REPO, catalog, make_project, write_yaml
from tests.acceptance.test_db_exactly_once import (
    COLUMNS,
    assert_same_rows,
    committed_cursor,
    iceberg_rows,
    kill_group,
    source_rows,
    start_run,
)
from tests.pg import URI, needs_postgres, psycopg, sql  # noqa: F401

#: the area's prefix, unique per run: parallel runs of the suite must not share the source table
SCHEMA = f"dativo_faults_concurrent_{uuid.uuid4().hex[:8]}"
ROWS = 60_000
KINDS = ["iceberg", "files"]


# -- two sinks in one process: the exact interleaving ---------------------------------------------------------
SCHEMA_ARROW = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])


class _ListedTooEarly(FileSink):
    """A run that listed the manifests just before the other run published its own (the head it sees is stale
    once): both then publish the same sequence."""

    stale: Head | None = None

    def _head(self) -> Head:
        if self.stale is not None:
            head, self.stale = self.stale, None
            return head
        return super()._head()


@dataclass
class Target:
    """Where the sinks of one test write: the embedded Iceberg catalog, or a local plain-file dataset."""

    kind: str
    home: Path

    @property
    def dataset(self) -> ObjectStore:
        return local_store(self.home / "files", "target.connection.path").at("acme", "t")

    def sink(self, write_mode: str = "merge", name: str = "acme.t", run_id: str | None = None,
             cls: type[FileSink] = FileSink) -> Sink:
        primary_key = ["id"] if write_mode == "merge" else []
        if self.kind == "iceberg":
            (self.home / "warehouse").mkdir(parents=True, exist_ok=True)
            sink: Sink = IcebergSink(catalog(self.home), name, SCHEMA_ARROW, primary_key=primary_key,
                                     write_mode=write_mode)
        else:
            files = FileTarget(local_store(self.home / "files", "target.connection.path"), "parquet", 1 << 20,
                               ["acme"])
            sink = cls(files, files.dataset("t"), SCHEMA_ARROW, run_id=run_id or uuid.uuid4().hex[:8],
                       ingest_date=date(2024, 5, 6), primary_key=primary_key, write_mode=write_mode)
        sink.current_state()  # what a run does first: its state comes from the table as it is now
        return sink

    def table(self) -> tuple[list[tuple[int, str]], dict[str, Any]]:
        """(id, v) of every row, sorted, and the committed state."""
        if self.kind == "iceberg":
            table = catalog(self.home).load_table("acme.t")
            data = table.scan().to_arrow()
            state = table.current_snapshot().summary.additional_properties["dativo.state"]
        else:
            manifest = latest_manifest(self.dataset)
            data = pa.concat_tables([pq.read_table(self.dataset.fs_path(f["path"])) for f in manifest.files])
            state = manifest.state
        return sorted(zip(data.column("id").to_pylist(), data.column("v").to_pylist(), strict=True)), json.loads(state)

    def files(self) -> set[str]:
        """The data files on disk."""
        return {str(p) for p in self.home.rglob("*.parquet")}

    def live_files(self) -> set[str]:
        """The data files the table (or the newest manifest) references."""
        if self.kind == "iceberg":
            table = catalog(self.home).load_table("acme.t")
            return {t.file.file_path.removeprefix("file://") for t in table.scan().plan_files()}
        return {self.dataset.fs_path(f["path"]) for f in latest_manifest(self.dataset).files}


@pytest.fixture(params=KINDS)
def target(request, tmp_path) -> Target:
    return Target(request.param, tmp_path / "home")


def _rows(ids: range, v: str) -> pa.Table:
    return pa.table({"id": pa.array(list(ids), pa.int64()), "v": [v] * len(ids)}, schema=SCHEMA_ARROW)


def _state(**streams: Any) -> StateEnvelope:
    return StateEnvelope(engine="native", dialect="native", streams=streams)


def _cursor(value: str) -> dict[str, Any]:
    return {"cursor": {"field": "updated_at", "value": value}}


def test_merge_whose_cursor_is_not_behind_is_reapplied_on_top(target):
    first, second = target.sink(), target.sink()
    first.write(_rows(range(0, 100), "first"))
    second.write(_rows(range(50, 150), "second"))
    first.commit(_state(orders=_cursor("2024-01-02T00:00:00+00:00")))
    second.commit(_state(orders=_cursor("2024-01-03T00:00:00+00:00")))
    rows, state = target.table()
    assert rows == [(i, "first") for i in range(50)] + [(i, "second") for i in range(50, 150)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2024-01-03T00:00:00+00:00"
    # the re-applied writer's next commit builds on its own commit: no conflict left
    second.write(_rows(range(150, 160), "second"))
    second.commit(_state(orders=_cursor("2024-01-04T00:00:00+00:00")))
    assert len(target.table()[0]) == 160


def test_merge_whose_cursor_is_behind_fails_cleanly_and_keeps_the_winners_commit(target):
    first, second = target.sink(), target.sink()
    first.write(_rows(range(0, 100), "first"))
    second.write(_rows(range(0, 80), "second"))
    first.commit(_state(orders=_cursor("2024-01-03T00:00:00+00:00")))
    # the loser's rows are in data files referenced by nothing, or (Iceberg) still gathered into a row group that
    # its commit writes first: either way nothing of them may stay behind after the refused commit
    assert target.files() - target.live_files() or target.kind == "iceberg"
    with pytest.raises(ConcurrentCommitError) as failure:
        second.commit(_state(orders=_cursor("2024-01-02T00:00:00+00:00")))
    message = str(failure.value)
    assert "another run committed" in message and "run the job again" in message and "\n" not in message
    rows, state = target.table()
    assert rows == [(i, "first") for i in range(100)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2024-01-03T00:00:00+00:00"
    assert target.files() == target.live_files()  # the loser's data files are gone


def test_append_never_reapplies_on_top_of_another_commit(target):
    first, second = target.sink("append"), target.sink("append")
    first.write(_rows(range(0, 10), "first"))
    second.write(_rows(range(0, 10), "second"))
    first.commit(_state(orders=_cursor("5")))
    with pytest.raises(ConcurrentCommitError, match="another run committed"):
        second.commit(_state(orders=_cursor("9")))
    assert target.table()[0] == [(i, "first") for i in range(10)]


def test_file_states_reapply_only_over_a_subset_of_the_files(target):
    a = {"a.csv": {"mtime_ns": 1, "size": 10}}
    ab = {**a, "b.csv": {"mtime_ns": 2, "size": 20}}
    first, second = target.sink(), target.sink()
    first.write(_rows(range(0, 10), "first"))
    second.write(_rows(range(0, 20), "second"))
    first.commit(_state(employees={"files": a}))
    second.commit(_state(employees={"files": ab}))  # covers the winner's files: re-applied
    assert target.table()[1]["streams"]["employees"]["files"] == ab
    third, fourth = target.sink(), target.sink()
    third.write(_rows(range(0, 5), "third"))
    fourth.write(_rows(range(0, 5), "fourth"))
    third.commit(_state(employees={"files": {**ab, "c.csv": {"mtime_ns": 3, "size": 1}}}))
    with pytest.raises(ConcurrentCommitError):
        fourth.commit(_state(employees={"files": {**ab, "d.csv": {"mtime_ns": 4, "size": 1}}}))


def test_deletes_computed_before_the_other_commit_are_not_reapplied(target):
    first = target.sink()
    first.write(_rows(range(0, 10), "first"))
    first.commit(_state(orders=_cursor("1")))
    second, third = target.sink(), target.sink()
    second.write(_rows(range(5, 15), "second"))
    third.delete_keys(pa.table({"id": pa.array([0], pa.int64())}))
    assert third.pending_deletes == 1
    second.commit(_state(orders=_cursor("2")))
    with pytest.raises(ConcurrentCommitError, match="the rows it deletes"):
        third.commit(_state(orders=_cursor("3")))
    assert [i for i, _ in target.table()[0]] == list(range(15))  # id 0 is still there


def test_pyiceberg_blind_retry_is_off_also_on_tables_created_before(tmp_path):
    home = tmp_path / "home"
    (home / "warehouse").mkdir(parents=True)
    cat = catalog(home)
    cat.create_namespace("acme")
    cat.create_table("acme.old", schema=SCHEMA_ARROW)  # as an earlier version created it
    sink = IcebergSink(cat, "acme.old", SCHEMA_ARROW, write_mode="append")
    sink.open()
    assert cat.load_table("acme.old").properties["commit.retry.num-retries"] == "0"
    Target("iceberg", home).sink().open()
    assert cat.load_table("acme.t").properties["commit.retry.num-retries"] == "0"


def test_two_runs_publishing_the_same_manifest_sequence_leave_one_manifest_and_both_commits(tmp_path):
    target = Target("files", tmp_path / "home")
    first = target.sink(run_id="r1")
    second = target.sink(run_id="r2", cls=_ListedTooEarly)
    second.stale = Head(None, None)  # it saw the dataset empty: it publishes sequence 1 too
    first.write(_rows(range(0, 10), "first"))
    second.write(_rows(range(5, 20), "second"))
    first.commit(_state(orders=_cursor("1")))
    second.commit(_state(orders=_cursor("2")))  # finds first's sequence 1: withdraws its own, re-applies on top
    names = manifest_names(target.dataset)
    assert [n.split("-", 1)[0] for n in names] == ["000000000001", "000000000002"]
    assert names[0].endswith("-r1.json") and names[1].endswith("-r2.json")
    rows, state = target.table()
    assert rows == [(i, "first") for i in range(5)] + [(i, "second") for i in range(5, 20)]
    assert state["streams"]["orders"]["cursor"]["value"] == "2"
    assert target.files() == target.live_files()


# -- two CLI runs at once ---------------------------------------------------------------------------------


@pytest.fixture
def pg_table():
    sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    sql(f"CREATE SCHEMA {SCHEMA}")
    sql(f"""CREATE TABLE {SCHEMA}.orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2),
            qty integer, note text, updated_at timestamptz NOT NULL)""")
    sql(f"""INSERT INTO {SCHEMA}.orders SELECT g, 'customer-' || (g % 997), (g % 100000) / 100.0, g % 50, NULL,
            timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' FROM generate_series(1, {ROWS}) g""")
    yield f"{SCHEMA}.orders"
    sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _pg_project(tmp_path: Path, table: str, *, merge: bool) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    pk = {"primary_key": True} if merge else {}
    write_yaml(project / "assets/postgres/v1.0/orders.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "orders", "version": "1.0",
        "source_type": "postgres", "object": "orders",
        "schema": [{"name": "id", "type": "long", "required": True, **pk},
                   {"name": "customer", "type": "string", "required": True},
                   {"name": "amount", "type": "decimal(12,2)"}, {"name": "qty", "type": "integer"},
                   {"name": "note", "type": "string"}, {"name": "updated_at", "type": "timestamptz", "required": True}],
    })
    job = write_yaml(project / "jobs/acme/pg_orders.yaml", {
        "tenant_id": "acme", "source_connector": "postgres", "target_connector": "iceberg", "engine": "native",
        "asset": "orders", "asset_path": "assets/postgres/v1.0/orders.yaml",
        "source": {"connection": {"host": "127.0.0.1", "port": "5432", "database": "test", "user": "postgres",
                                  "password": ""},
                   "tables": [{"name": table, "object": "orders", "cursor_field": "updated_at",
                               **({"primary_key": ["id"]} if merge else {})}],
                   "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}},
        "target": {"write_mode": "merge" if merge else "append", "commit_every_rows": 20_000},
    })
    return project, job


def _to_local_files(job: Path) -> None:
    """The same job, writing plain Parquet files under ``<project>/out`` instead of the Iceberg table."""
    data = yaml.safe_load(job.read_text())
    data["target_connector"] = "local"
    data.pop("target_connector_path", None)
    data["target"] = {**(data.get("target") or {}), "connection": {"path": "out"}}
    job.write_text(yaml.safe_dump(data, sort_keys=False))


def _file_rows(project: Path, folders: tuple[str, ...], columns: list[str]) -> list[tuple]:
    """The rows of the dataset ``out/<folders>`` as the newest manifest lists them."""
    dataset = local_store(project / "out", "target.connection.path").at(*folders)
    manifest = latest_manifest(dataset)
    assert manifest is not None
    data = pa.concat_tables([pq.read_table(dataset.fs_path(f["path"]), columns=columns) for f in manifest.files])
    return list(zip(*(data.column(c).to_pylist() for c in columns), strict=True))


def _file_cursor(project: Path) -> str | None:
    manifest = latest_manifest(local_store(project / "out", "target.connection.path").at("acme", "orders"))
    value = json.loads(manifest.state)["streams"]["orders"]["cursor"]["value"] if manifest else None
    return value


def run_pair(project: Path, job: Path, home: Path, logs: Path) -> list[tuple[int, dict[str, Any] | None, str]]:
    """Start two runs of the job together, wait for both; (exit code, summary, last stderr line) of each."""
    procs = [start_run(project, job, home, logs / f"run{i}") for i in (1, 2)]
    try:
        for proc in procs:
            proc.wait(timeout=180)
    finally:
        for proc in procs:
            if proc.returncode is None:
                kill_group(proc)
    outcomes = []
    for i, proc in enumerate(procs, start=1):
        out = (logs / f"run{i}.out").read_text().strip().splitlines()
        err = (logs / f"run{i}.err").read_text()
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert proc.returncode != -signal.SIGKILL
        assert proc.returncode in (0, 2), f"run {i} exit {proc.returncode}: {err[-2000:]}"
        assert "Traceback" not in err, err[-3000:]
        summary = json.loads(out[-1]) if out else None
        if proc.returncode == 2:
            # one line, saying why and what to do; nothing of its commit published
            assert lines[-1].startswith("ERROR:") and "another run committed" in lines[-1], lines[-1]
            assert "run the job again" in lines[-1]
        rebased = "re-applying this commit on top" in err
        what = (f"exit {proc.returncode}: " + (f"{summary['rows_written']} rows in {summary['commits']} commits"
                                                + (", re-applied on top of the other run" if rebased else "")
                                                if proc.returncode == 0 and summary else lines[-1][:160]))
        print(f"  run {i}: {what}")
        outcomes.append((proc.returncode, summary, lines[-1] if lines else ""))
    assert any(code == 0 for code, _, _ in outcomes), "neither run committed"
    return outcomes


@needs_postgres
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("merge", [True, False], ids=["merge-by-primary-key", "append-no-primary-key"])
def test_two_concurrent_postgres_runs_leave_the_table_equal_to_the_source(tmp_path, pg_table, merge, kind):
    project, job = _pg_project(tmp_path, pg_table, merge=merge)
    if kind == "files":
        _to_local_files(job)
    home = tmp_path / "home"
    for round_no in (1, 2):  # a new table, then an incremental run over inserts (and updates)
        print(f"round {round_no} ({'merge' if merge else 'append'}, {kind}):")
        outcomes = run_pair(project, job, home, tmp_path / f"logs{round_no}")
        if not merge:
            # an append cannot be re-applied: either the other run failed cleanly, or it did not overlap
            # (it started after the first commit and found nothing new)
            codes = sorted(code for code, _, _ in outcomes)
            assert codes == [0, 2] or any(s and s["rows_written"] == 0 for _, s, _ in outcomes), outcomes
        # a run that lost starts again and continues from what the winner committed
        if any(code == 2 for code, _, _ in outcomes):
            again = start_run(project, job, home, tmp_path / f"logs{round_no}" / "again")
            assert again.wait(timeout=120) == 0
        newest = sql(f"SELECT max(updated_at) FROM {pg_table}")[0][0]
        if kind == "iceberg":
            assert_same_rows(iceberg_rows(home), source_rows(pg_table))
            assert committed_cursor(home) == newest
        else:
            assert_same_rows(_file_rows(project, ("acme", "orders"), list(COLUMNS)), source_rows(pg_table))
            assert _file_cursor(project) == newest.isoformat()
        # changes for the next round (append: new rows only; updates would be new versions of old rows)
        base = f"timestamptz '2025-01-0{round_no} 00:00:00+00'"
        sql(f"""INSERT INTO {pg_table} SELECT g, 'new', 1.5, 1, 'round {round_no}', {base} + (g / 3) * interval '1 ms'
                FROM generate_series({ROWS + round_no * 10_000}, {ROWS + round_no * 10_000 + 4_999}) g""")
        if merge:
            sql(f"""UPDATE {pg_table} SET note = 'updated {round_no}', updated_at = {base} + interval '1 hour'
                    WHERE id % 101 = {round_no}""")


@pytest.mark.parametrize("kind", KINDS)
def test_two_concurrent_runs_of_the_demo_csv_job(tmp_path, kind):
    project = make_project(tmp_path / "project")
    for part in ("jobs/acme/csv_employee_to_iceberg.yaml", "assets/csv/v1.0/employee.yaml",
                 "data/employee/employees.csv"):
        (project / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / part, project / part)
    job = project / "jobs/acme/csv_employee_to_iceberg.yaml"
    if kind == "files":
        _to_local_files(job)
    csv = project / "data/employee/employees.csv"
    home = tmp_path / "home"
    for round_no in (1, 2):
        print(f"round {round_no} (demo CSV job, merge by employee_id, {kind}):")
        outcomes = run_pair(project, job, home, tmp_path / f"logs{round_no}")
        if any(code == 2 for code, _, _ in outcomes):
            assert start_run(project, job, home, tmp_path / f"logs{round_no}" / "again").wait(timeout=120) == 0
        if kind == "iceberg":
            landed = catalog(home).load_table("acme.csv_employee").scan().to_arrow()
            ids, names = landed.column("employee_id").to_pylist(), landed.column("last_name").to_pylist()
        else:  # the asset's domain and data product are folders of the dataset
            rows = _file_rows(project, ("acme", "hr", "employee", "csv_employee"), ["employee_id", "last_name"])
            ids, names = [i for i, _ in rows], [n for _, n in rows]
        lines = csv.read_text().strip().splitlines()[1:]
        assert sorted(ids) == sorted(int(line.split(",")[0]) for line in lines)  # each employee exactly once
        by_id = dict(zip(ids, names, strict=True))
        assert by_id == {int(line.split(",")[0]): line.split(",")[2] for line in lines}
        # next round: one employee renamed, one hired
        rows = csv.read_text().strip().splitlines()
        first = rows[1].split(",")
        first[2] = f"Renamed{round_no}"
        hired = rows[-1].split(",")
        hired[0] = str(int(hired[0]) + 1)
        csv.write_text("\n".join([rows[0], ",".join(first), *rows[2:], ",".join(hired)]) + "\n")
