"""``engine: spark`` on files: a CSV glob and Parquet files; strict and warn with the DuckDB stage's casts and
violations (the tasks run the same ``Stage``), compared with the native engine on the same messy input."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dativo_ingest.errors import ValidationFailed
from tests.acceptance.helpers import catalog, table_rows
from tests.integration.spark_helpers import run_here, spark_project, spark_session_per_module  # noqa: F401

FIELDS = [{"name": "id", "type": "long", "required": True}, {"name": "qty", "type": "integer"},
          {"name": "price", "type": "decimal(6,2)"}, {"name": "ok", "type": "boolean"},
          {"name": "day", "type": "date"}, {"name": "at", "type": "timestamptz"}, {"name": "name", "type": "string"}]
HEADER = "id,qty,price,ok,day,at,name\n"
CLEAN = [f"{i},{i * 2},{i}.50,true,2024-01-{i % 28 + 1:02d},2024-01-01T10:00:00+02:00,n{i}\n" for i in range(1, 41)]
MESSY = [
    "41,1.5,1.00,true,2024-01-01,2024-01-01T00:00:00Z,fraction\n",  # an integer with a fraction
    "42,7,1.005,false,2024-01-01,2024-01-01T00:00:00Z,too many digits\n",  # decimal(6,2) would round
    "43,7,1.00,maybe,2024-01-01,2024-01-01T00:00:00Z,not a boolean\n",
    "44,7,1.00,true,2024-02-30,2024-01-01T00:00:00Z,not a date\n",
    ",7,1.00,true,2024-01-01,2024-01-01T00:00:00Z,no id\n",  # required value missing
    "46,x,99999.00,2,2024-01-01 10:00:00,soon,two at once\n",
]


def _files(project, lines_by_file: dict[str, list[str]]) -> None:
    for name, lines in lines_by_file.items():
        path = project / "data" / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(lines))


def _project(tmp_path, engine: str, mode: str):
    source = {"files": [{"path": "data/in/part-*.csv", "object": "t"}]}
    return spark_project(tmp_path / engine, FIELDS, source, connector="csv", engine=engine,
                         schema_validation_mode=mode)


def _landed(home) -> list[dict]:
    rows = table_rows(home, "acme.t")
    return sorted((r for r in rows.drop_columns(["_dativo_ingest_ts", "_dativo_run_id"]).to_pylist()),
                  key=lambda r: r["id"])


def test_warn_quarantines_what_the_native_stage_quarantines_and_lands_the_same_rows(tmp_path, monkeypatch):
    results = {}
    for engine in ("native", "spark"):
        project, job = _project(tmp_path, engine, "warn")
        _files(project, {"part-1.csv": CLEAN[:20] + MESSY[:3], "part-2.csv": CLEAN[20:] + MESSY[3:]})
        home = tmp_path / engine / "home"
        summary = run_here(job, home, monkeypatch)
        assert summary["rows_read"] == 46 and summary["rows_written"] == 40 and summary["rows_quarantined"] == 6
        quarantine = table_rows(home, "acme.t__quarantine")
        reasons = sorted(quarantine.column("_dativo_reason").to_pylist())
        raw = sorted(quarantine.select(["id", "qty", "price", "ok", "day", "at", "name"]).to_pylist(),
                     key=lambda r: r["name"])
        results[engine] = (_landed(home), reasons, raw)
    assert results["spark"] == results["native"]  # the same rows, the same values, the same reasons
    # the same file state: on the spark project's table, the native engine finds every file already read
    native_job = spark_project(tmp_path / "spark", FIELDS, {"files": [{"path": "data/in/part-*.csv", "object": "t"}]},
                               connector="csv", engine="native", schema_validation_mode="warn")[1]
    assert run_here(native_job, tmp_path / "spark" / "home", monkeypatch)["rows_read"] == 0
    landed, reasons, _ = results["spark"]
    assert len(landed) == 40 and str(landed[0]["price"]) == "1.50"
    assert any("qty: value '1.5' does not fit integer exactly" in r for r in reasons)
    assert any("id: required value missing" in r for r in reasons)


def test_strict_fails_and_leaves_no_commit_and_no_data_file(tmp_path, monkeypatch):
    project, job = _project(tmp_path, "spark", "strict")
    _files(project, {"part-1.csv": CLEAN[:5] + MESSY[:1], "part-2.csv": CLEAN[5:10]})
    home = tmp_path / "spark" / "home"
    with pytest.raises(ValidationFailed, match=r"1 row\(s\) violate the asset t .* nothing committed"):
        run_here(job, home, monkeypatch)
    table = catalog(home).load_table("acme.t")
    assert table.current_snapshot() is None
    assert not list((home / "warehouse").rglob("*.parquet"))  # the tasks' files were deleted on abort


def test_a_line_with_too_many_fields_is_quarantined_or_refused_not_cut(tmp_path, monkeypatch):
    # Spark's CSV parser drops the fields beyond its schema without a word: the line must not land cut short
    line = "47,7,1.00,true,2024-01-01,2024-01-01T00:00:00Z,shifted,extra\n"
    project, job = _project(tmp_path, "spark", "warn")
    _files(project, {"part-1.csv": CLEAN[:5] + [line]})
    home = tmp_path / "spark" / "home"
    summary = run_here(job, home, monkeypatch)
    assert (summary["rows_written"], summary["rows_quarantined"]) == (5, 1)
    assert 47 not in [r["id"] for r in _landed(home)]
    reason = table_rows(home, "acme.t__quarantine").column("_dativo_reason").to_pylist()
    assert reason == ["more fields than the header's 7 (the line is not read)"]
    project, job = _project(tmp_path / "strict", "spark", "strict")
    _files(project, {"part-1.csv": CLEAN[:5] + [line]})
    with pytest.raises(ValidationFailed):
        run_here(job, tmp_path / "strict" / "home", monkeypatch)


def test_parquet_files_by_glob(tmp_path, monkeypatch):
    project, job = spark_project(tmp_path, [{"name": "id", "type": "long"}, {"name": "v", "type": "double"}],
                                 {"files": [{"path": "data/p/*.parquet", "object": "t"}]}, connector="csv")
    (project / "data" / "p").mkdir(parents=True)
    for n in range(3):
        pq.write_table(pa.table({"id": pa.array(range(n * 10, n * 10 + 10), pa.int32()),
                                 "v": pa.array([0.5] * 10)}), project / "data" / "p" / f"f{n}.parquet")
    summary = run_here(job, tmp_path / "home", monkeypatch)
    assert summary["rows_written"] == 30
    assert sorted(table_rows(tmp_path / "home", "acme.t").column("id").to_pylist()) == list(range(30))
    assert run_here(job, tmp_path / "home", monkeypatch)["rows_read"] == 0  # unchanged files are skipped
    pq.write_table(pa.table({"id": pa.array([30, 31], pa.int32()), "v": pa.array([1.0, 2.0])}),
                   project / "data" / "p" / "f3.parquet")
    assert run_here(job, tmp_path / "home", monkeypatch)["rows_read"] == 2  # only the new file
    assert sorted(table_rows(tmp_path / "home", "acme.t").column("id").to_pylist()) == list(range(32))


def test_runs_at_once_share_the_session_and_other_options_are_refused():
    from pathlib import Path

    from dativo_ingest.engines.spark.options import spark_options
    from dativo_ingest.engines.spark.session import get_session, spark_session
    from dativo_ingest.errors import ConfigError
    from tests.integration.spark_helpers import SPARK

    job = Path("jobs/acme/t.yaml")
    options = spark_options({"spark": SPARK}, job)
    with spark_session(options, job) as first, spark_session(options, job) as second:
        assert first is second  # two runs of the pool's threads, one JVM
        with pytest.raises(ConfigError, match=r"another job of this process runs on Spark with other options"):
            get_session(spark_options({"spark": {"master": "local[1]"}}, job), job)


def test_quality_rules_and_two_streams_of_one_merge_table(tmp_path, monkeypatch):
    """The quality rules judge what the commit writes (strict: nothing committed); two streams writing one merge
    table hold each key once (they are shuffled together by key)."""
    fields = [{"name": "id", "type": "long", "primary_key": True},
              {"name": "country", "type": "string",
               "quality": [{"metric": "invalidValues", "arguments": {"validValues": ["DE", "FR"]}, "mustBe": 0}]}]
    source = {"files": [{"path": "data/eu.csv", "object": "eu"}, {"path": "data/all.csv", "object": "all"}]}
    for mode in ("strict", "warn"):
        project, job = spark_project(tmp_path / mode, fields, source, connector="csv",
                                     schema_validation_mode=mode, target={"write_mode": "merge"})
        (project / "data").mkdir(exist_ok=True)
        (project / "data" / "eu.csv").write_text("id,country\n1,DE\n2,FR\n3,XX\n")
        (project / "data" / "all.csv").write_text("id,country\n1,DE\n2,FR\n3,US\n4,FR\n")
        home = tmp_path / mode / "home"
        if mode == "strict":
            with pytest.raises(ValidationFailed, match=r"quality rule\(s\) failed on asset t: .*nothing committed"):
                run_here(job, home, monkeypatch)
            assert catalog(home).load_table("acme.t").current_snapshot() is None
            assert not list((home / "warehouse").rglob("*.parquet"))
            continue
        summary = run_here(job, home, monkeypatch)
        assert summary["quality"]["failed"] == 1 and summary["exit_code"] == 1
        ids = sorted(table_rows(home, "acme.t").column("id").to_pylist())
        assert ids == [1, 2, 3, 4]  # 7 rows of two streams, 4 keys
        state = catalog(home).load_table("acme.t").current_snapshot().summary.additional_properties["dativo.state"]
        assert '"eu"' in state and '"all"' in state  # both streams' files are recorded


def test_a_failed_task_fails_the_run_and_its_files_are_deleted(tmp_path, monkeypatch):
    from dativo_ingest.errors import SourceError

    project, job = _project(tmp_path, "spark", "warn")
    _files(project, {"part-1.csv": CLEAN[:20], "part-2.csv": CLEAN[20:]})
    home = tmp_path / "spark" / "home"
    monkeypatch.setenv("DATIVO_FAULT", "spark-task-error")
    with pytest.raises(SourceError, match=r"failed in a task: RuntimeError: fault injection"):
        run_here(job, home, monkeypatch)
    assert catalog(home).load_table("acme.t").current_snapshot() is None
    assert not list((home / "warehouse").rglob("*.parquet"))  # written, then deleted with the failed run
    monkeypatch.delenv("DATIVO_FAULT")
    assert run_here(job, home, monkeypatch)["rows_written"] == 40
