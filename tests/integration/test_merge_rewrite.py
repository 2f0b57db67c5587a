"""Merge by primary key as copy-on-write by data file (``sinks/iceberg/rewrite.py``), against the real embedded
(SQLite) Iceberg catalog: any key shape and count, only the files holding a written key are rewritten, a
concurrent commit is a conflict, and a kill at any step leaves the table before or after."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dativo_ingest.sinks.base import ConcurrentCommitError
from dativo_ingest.sinks.iceberg import rewrite
from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.state.envelope import StateEnvelope
from tests.acceptance.helpers import REPO, catalog
from tests.independent_reader import current_metadata, duckdb_query


def _sink(home: Path, schema: pa.Schema, primary_key: list[str], *, partitioning: tuple[str, ...] = (),
          name: str = "acme.t") -> IcebergSink:
    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    sink = IcebergSink(catalog(home), name, schema, primary_key=primary_key, write_mode="merge",
                       partitioning=partitioning)
    sink.current_state()
    return sink


def _state(value: str) -> StateEnvelope:
    return StateEnvelope(engine="native", dialect="native",
                         streams={"t": {"cursor": {"field": "updated_at", "value": value}}})


def _commit(home: Path, schema: pa.Schema, pk: list[str], data: pa.Table, cursor: str, **kw) -> IcebergSink:
    sink = _sink(home, schema, pk, **kw)
    sink.write(data)
    sink.commit(_state(cursor))
    return sink


def _table(home: Path) -> pa.Table:
    return catalog(home).load_table("acme.t").scan().to_arrow()


def _each_key_once(data: pa.Table, pk: list[str]) -> None:
    keys = ", ".join(pk)
    con = duckdb.connect()
    con.register("t", data)
    dup = con.execute(f"SELECT count(*) FROM (SELECT {keys} FROM t GROUP BY {keys} HAVING count(*) > 1)").fetchone()
    assert dup == (0,)


def _read_independently(home: Path, pk: list[str], value: str = "v") -> tuple[int, int, dict[str, int]]:
    """(rows, distinct keys, rows per value of ``value``) as DuckDB's iceberg extension reads the table."""
    table = catalog(home).load_table("acme.t")
    metadata = current_metadata(Path(table.location().removeprefix("file://")))
    keys = ", ".join(pk)
    [[rows, distinct, values]] = duckdb_query(
        f"WITH t AS (SELECT * FROM iceberg_scan('{metadata}')) SELECT count(*), "
        f"(SELECT count(*) FROM (SELECT DISTINCT {keys} FROM t)), "
        f"(SELECT to_json(map(list(x), list(n))) FROM (SELECT CAST({value} AS VARCHAR) AS x, count(*) AS n "
        f"FROM t GROUP BY 1)) FROM t")
    return rows, distinct, {k: int(v) for k, v in json.loads(values).items()}


def _live_files(home: Path) -> set[str]:
    return {t.file.file_path for t in catalog(home).load_table("acme.t").scan().plan_files()}


COMPOSITE = pa.schema([pa.field("a", pa.int64()), pa.field("b", pa.string()), pa.field("v", pa.int64())])


def test_composite_key_with_50k_changed_keys(tmp_path):
    """The case a row filter could not commit (RecursionError from ~500 keys): 50k changes, 1k new keys."""
    home = tmp_path / "home"
    n = 60_000
    a = pa.array([i // 2 for i in range(n)], pa.int64())
    b = pa.array(["x" if i % 2 else "y" for i in range(n)])
    _commit(home, COMPOSITE, ["a", "b"], pa.table({"a": a, "b": b, "v": pa.array([0] * n, pa.int64())},
                                                  schema=COMPOSITE), "1")
    changed = [i for i in range(n) if i % 6 != 5]  # 50k (a, b) pairs scattered over the whole table
    assert len(changed) == 50_000
    new = pa.table({"a": pa.array([n + i for i in range(1000)], pa.int64()), "b": ["z"] * 1000,
                    "v": pa.array([2] * 1000, pa.int64())}, schema=COMPOSITE)
    upd = pa.table({"a": a.take(changed), "b": b.take(changed), "v": pa.array([1] * len(changed), pa.int64())},
                   schema=COMPOSITE)
    _commit(home, COMPOSITE, ["a", "b"], pa.concat_tables([upd, new]), "2")
    data = _table(home)
    assert data.num_rows == n + 1000
    _each_key_once(data, ["a", "b"])
    con = duckdb.connect()
    con.register("t", data)
    assert con.execute("SELECT v, count(*) FROM t GROUP BY v ORDER BY v").fetchall() == [
        (0, n - 50_000), (1, 50_000), (2, 1000)]
    assert _read_independently(home, ["a", "b"]) == (n + 1000, n + 1000, {"0": n - 50_000, "1": 50_000, "2": 1000})


@pytest.mark.parametrize("kind", ["string", "decimal", "date", "timestamp"])
def test_string_decimal_and_time_keys(tmp_path, kind):
    home = tmp_path / "home"
    if kind == "string":  # longer than the 16 characters a string bound keeps: bounds are truncated
        key_type = pa.string()
        keys = [f"customer-{i:07d}-with-a-long-common-prefix" for i in range(5000)]
    elif kind == "decimal":
        key_type = pa.decimal128(12, 2)
        keys = [Decimal(i) / 4 for i in range(5000)]
    elif kind == "date":
        key_type = pa.date32()
        keys = [date(2000, 1, 1) + timedelta(days=i) for i in range(5000)]
    else:
        key_type = pa.timestamp("us")
        keys = [datetime(2024, 1, 1) + timedelta(seconds=7 * i) for i in range(5000)]
    schema = pa.schema([pa.field("k", key_type), pa.field("v", pa.int64())])
    for part in range(4):  # four files
        rows = keys[part * 1250:(part + 1) * 1250]
        _commit(home, schema, ["k"], pa.table({"k": pa.array(rows, key_type), "v": [0] * len(rows)}, schema=schema),
                str(part))
    changed = keys[100:1250:7] + [keys[1300]]
    new = {"string": ["zz-new"], "decimal": [Decimal("99999.25")], "date": [date(2100, 1, 1)],
           "timestamp": [datetime(2100, 1, 1)]}[kind]
    rows = changed + new
    before = _live_files(home)
    _commit(home, schema, ["k"], pa.table({"k": pa.array(rows, key_type), "v": [1] * len(rows)}, schema=schema), "9")
    assert len(before - _live_files(home)) == 2  # the key bounds of the other two files exclude every key
    data = _table(home)
    assert data.num_rows == 5001
    _each_key_once(data, ["k"])
    got = {k: v for k, v in zip(data.column("k").to_pylist(), data.column("v").to_pylist(), strict=True)}
    assert all(got[k] == 1 for k in rows) and sum(got.values()) == len(rows)


def test_files_holding_no_written_key_are_untouched(tmp_path):
    home = tmp_path / "home"
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    for part in range(5):  # five files of disjoint key ranges
        ids = list(range(part * 1000, (part + 1) * 1000))
        _commit(home, schema, ["id"], pa.table({"id": ids, "v": ["old"] * 1000}, schema=schema), str(part))
    before = _live_files(home)
    sink = _sink(home, schema, ["id"])
    sink.write(pa.table({"id": [2001, 2500, 9999], "v": ["new"] * 3}, schema=schema))
    sink.commit(_state("9"))
    after = _live_files(home)
    assert len(before - after) == 1  # only the file of 2000..2999 was replaced
    assert len(after - before) == 2  # by its survivors, and the run's new file
    data = _table(home)
    assert data.num_rows == 5001
    _each_key_once(data, ["id"])


def test_table_partitioned_by_bucket_rewrites_only_the_written_keys_buckets(tmp_path):
    home = tmp_path / "home"
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    ids = list(range(16_000))
    _commit(home, schema, ["id"], pa.table({"id": ids, "v": ["old"] * len(ids)}, schema=schema), "1",
            partitioning=("bucket(16, id)",))
    table = catalog(home).load_table("acme.t")
    by_bucket = {t.file.partition[0]: t.file.file_path for t in table.scan().plan_files()}
    assert len(by_bucket) == 16
    bucket = rewrite._key_partitions(table, ["id"])[0][2]  # noqa: SLF001 - the transform the planner uses
    buckets = bucket(pa.array(ids, pa.int64())).to_pylist()
    written = [i for i, b in zip(ids, buckets, strict=True) if b in (3, 11)][::5]  # scattered over the range
    _commit(home, schema, ["id"], pa.table({"id": written, "v": ["new"] * len(written)}, schema=schema), "2",
            partitioning=("bucket(16, id)",))
    after = _live_files(home)
    assert {p for b, p in by_bucket.items() if b not in (3, 11)} <= after
    assert by_bucket[3] not in after and by_bucket[11] not in after
    data = _table(home)
    assert data.num_rows == 16_000
    _each_key_once(data, ["id"])
    assert sorted(i for i, v in zip(data.column("id").to_pylist(), data.column("v").to_pylist(), strict=True)
                  if v == "new") == written
    assert _read_independently(home, ["id"]) == (16_000, 16_000, {"old": 16_000 - len(written), "new": len(written)})


def test_deleted_keys_take_the_same_path(tmp_path):
    home = tmp_path / "home"
    _commit(home, COMPOSITE, ["a", "b"], pa.table({"a": list(range(3000)), "b": ["x"] * 3000, "v": [0] * 3000},
                                                  schema=COMPOSITE), "1")
    sink = _sink(home, COMPOSITE, ["a", "b"])
    sink.delete_keys(pa.table({"a": pa.array(list(range(0, 3000, 2)), pa.int64()), "b": ["x"] * 1500}))
    sink.commit(_state("2"))
    assert sorted(_table(home).column("a").to_pylist()) == list(range(1, 3000, 2))


def test_null_key_is_refused(tmp_path):
    with pytest.raises(Exception, match="holds null values"):
        rewrite.key_columns(pa.table({"id": pa.array([1, None], pa.int64())}), ["id"])


def test_a_concurrent_commit_to_a_rewritten_file_is_a_conflict_never_a_lost_update(tmp_path, monkeypatch):
    home = tmp_path / "home"
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    _commit(home, schema, ["id"], pa.table({"id": list(range(100)), "v": ["old"] * 100}, schema=schema), "1")
    slow, fast = _sink(home, schema, ["id"]), _sink(home, schema, ["id"])
    slow.write(pa.table({"id": list(range(10)), "v": ["slow"] * 10}, schema=schema))
    fast.write(pa.table({"id": list(range(50, 60)), "v": ["fast"] * 10}, schema=schema))
    real = rewrite.rewrite
    calls = []

    def rewrite_then_other_commits(*args, **kwargs):
        out = real(*args, **kwargs)
        if not calls:  # the other run commits between this run's rewrite and its commit
            calls.append(1)
            fast.commit(_state("2"))
        return out

    monkeypatch.setattr(rewrite, "rewrite", rewrite_then_other_commits)
    slow.commit(_state("3"))  # its cursor covers the other's: re-planned and re-applied on the new head
    rows = dict(zip(*(_table(home).column(c).to_pylist() for c in ("id", "v")), strict=True))
    assert len(_table(home)) == 100
    assert [rows[i] for i in range(100)] == ["slow"] * 10 + ["old"] * 40 + ["fast"] * 10 + ["old"] * 40
    # behind the other's cursor: refused, and the winner's rows stay
    late, winner = _sink(home, schema, ["id"]), _sink(home, schema, ["id"])
    late.write(pa.table({"id": [70], "v": ["late"]}, schema=schema))
    winner.write(pa.table({"id": [70], "v": ["winner"]}, schema=schema))
    calls.clear()
    fast = winner
    with pytest.raises(ConcurrentCommitError):
        monkeypatch.setattr(rewrite, "rewrite", lambda *a, **k: (fast.commit(_state("9")), real(*a, **k))[1])
        late.commit(_state("4"))
    rows = dict(zip(*(_table(home).column(c).to_pylist() for c in ("id", "v")), strict=True))
    assert rows[70] == "winner" and len(_table(home)) == 100


# -- a kill at each step ---------------------------------------------------------------------------------------
_KILLER = r"""
import os, signal, sys
import pyarrow as pa
from pyiceberg.table import Transaction
from dativo_ingest.sinks.iceberg import rewrite
from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.state.envelope import StateEnvelope
from tests.acceptance.helpers import catalog

home, step = sys.argv[1], sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_plan, real_file, real_commit = rewrite.plan, rewrite.rewrite_file, Transaction.commit_transaction
done = []
def plan(*a, **k):
    out = real_plan(*a, **k)
    if step == "planned":
        die()
    return out
def rewrite_file(*a, **k):
    real_file(*a, **k)
    done.append(1)
    if step == "one-file-rewritten" and len(done) == 1:
        die()
def commit_transaction(self):
    if step == "before-commit":
        die()
    out = real_commit(self)
    if step == "after-commit":
        die()
    return out
rewrite.plan, rewrite.rewrite_file, Transaction.commit_transaction = plan, rewrite_file, commit_transaction
schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
sink = IcebergSink(catalog(__import__("pathlib").Path(home)), "acme.t", schema, primary_key=["id"],
                   write_mode="merge")
sink.current_state()
ids = list(range(0, 4000, 3)) + [5000, 5001]
sink.write(pa.table({"id": ids, "v": ["new"] * len(ids)}, schema=schema))
sink.commit(StateEnvelope(engine="native", dialect="native", streams={"t": {"cursor": {"field": "c", "value": "9"}}}))
print("committed")
"""


@pytest.mark.parametrize("step", ["planned", "one-file-rewritten", "before-commit", "after-commit", "none"])
def test_a_kill_at_each_step_leaves_the_table_before_or_after(tmp_path, step):
    home = tmp_path / "home"
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    for part in range(4):
        ids = list(range(part * 1000, (part + 1) * 1000))
        _commit(home, schema, ["id"], pa.table({"id": ids, "v": ["old"] * 1000}, schema=schema), str(part))
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    proc = subprocess.run([sys.executable, str(script), str(home), step], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    data = _table(home)
    _each_key_once(data, ["id"])
    new = sorted(i for i, v in zip(data.column("id").to_pylist(), data.column("v").to_pylist(), strict=True)
                 if v == "new")
    after = list(range(0, 4000, 3)) + [5000, 5001]
    assert proc.returncode == (0 if step == "none" else -signal.SIGKILL), proc.stderr
    if step in ("after-commit", "none"):
        assert new == after and data.num_rows == 4002
    else:
        assert new == [] and data.num_rows == 4000
    values = {"old": data.num_rows - len(new), **({"new": len(new)} if new else {})}
    assert _read_independently(home, ["id"]) == (data.num_rows, data.num_rows, values)
    state = json.loads(catalog(home).load_table("acme.t").current_snapshot().summary.additional_properties[
        "dativo.state"])
    assert state["streams"]["t"]["cursor"]["value"] == ("9" if new else "3")


def test_an_unknown_pyiceberg_release_is_refused_in_one_line(monkeypatch):
    from dativo_ingest.sinks.iceberg import datafiles

    monkeypatch.setattr(datafiles, "package_version", lambda name: "0.99.1")
    with pytest.raises(Exception, match=r"needs pyiceberg 0\.12\.\*, found 0\.99\.1") as failure:
        datafiles.check_pyiceberg()
    assert "\n" not in str(failure.value)


def test_files_written_before_a_column_was_added_are_rewritten_in_the_current_schema(tmp_path):
    home = tmp_path / "home"
    narrow = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    wide = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string()), pa.field("w", pa.int64())])
    _commit(home, narrow, ["id"], pa.table({"id": list(range(100)), "v": ["old"] * 100}, schema=narrow), "1")
    _commit(home, wide, ["id"], pa.table({"id": [5, 500], "v": ["new"] * 2, "w": [1, 2]}, schema=wide), "2")
    data = _table(home).sort_by("id")
    assert data.num_rows == 101 and data.column("id").to_pylist() == list(range(100)) + [500]
    rows = {r["id"]: (r["v"], r["w"]) for r in data.to_pylist()}
    assert rows[5] == ("new", 1) and rows[500] == ("new", 2) and rows[6] == ("old", None)
    assert _read_independently(home, ["id"]) == (101, 101, {"old": 99, "new": 2})
