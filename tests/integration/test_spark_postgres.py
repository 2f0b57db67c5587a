# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""``engine: spark`` on PostgreSQL: partitioned JDBC reads → Parquet written by the tasks → one commit with the
state; incremental with updates between runs; merge by primary key; the engine switch keeps the cursor."""

from __future__ import annotations

from dativo_ingest.engines.native.sql.common import STANDARD
from dativo_ingest.engines.spark.jdbc import threshold_literal
from tests.acceptance.helpers import catalog, table_rows
from tests.integration.spark_helpers import run_here, spark_project, spark_session_per_module  # noqa: F401
from tests.integration.test_postgres_source import URI, pytestmark, schema, sql  # noqa: F401

FIELDS = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
          {"name": "amount", "type": "decimal(10,2)"}, {"name": "updated_at", "type": "timestamptz"}]


def pg_source(schema_name: str, table: str) -> dict:
    return {"connection": {"host": "127.0.0.1", "port": "5432", "database": "test", "user": "postgres",
                           "password": ""},
            "tables": [{"name": f"{schema_name}.{table}", "object": "o", "cursor_field": "updated_at"}]}


def _landed(home) -> list[tuple]:
    return sorted((r["id"], r["v"]) for r in table_rows(home, "acme.t").to_pylist())


def _state(home) -> dict:
    import orjson

    snap = catalog(home).load_table("acme.t").current_snapshot()
    return orjson.loads(snap.summary.additional_properties["dativo.state"])


def test_full_then_incremental_merge_in_one_commit_each(tmp_path, schema, monkeypatch):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, amount numeric(10,2), updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o SELECT i, 'v' || i, i * 1.5, '2024-01-01Z'::timestamptz + i * interval '1 minute'"
        f" FROM generate_series(1, 1000) i")
    project, job = spark_project(tmp_path, FIELDS, pg_source(schema, "o"), connector="postgres",
                                 target={"write_mode": "merge"})
    home = tmp_path / "home"
    first = run_here(job, home, monkeypatch)
    assert first["rows_read"] == first["rows_written"] == 1000 and first["commits"] == 1
    table = catalog(home).load_table("acme.t")
    assert len(table.snapshots()) == 1  # data and state landed in one snapshot
    files = table.inspect.files()
    assert files.num_rows >= 2  # two partitions read and written in parallel
    state = _state(home)
    assert state["engine"] == "spark" and state["dialect"] == "native"
    assert state["streams"]["o"]["cursor"] == {"field": "updated_at", "value": "2024-01-01T16:40:00+00:00"}
    rows = table_rows(home, "acme.t")
    assert rows.num_rows == 1000 and set(rows.column("_dativo_run_id").to_pylist()) == {first["run_id"]}
    assert str(rows.schema.field("amount").type) == "decimal128(10, 2)"

    sql(f"UPDATE {schema}.o SET v = 'changed', updated_at = '2024-02-01Z' WHERE id IN (3, 500)")
    sql(f"INSERT INTO {schema}.o VALUES (1001, 'new', 1, '2024-02-02Z')")
    second = run_here(job, home, monkeypatch)
    assert second["rows_read"] == 3 and second["commits"] == 1  # only the changes: the cursor was pushed down
    landed = dict(_landed(home))
    assert len(landed) == 1001 and landed[3] == landed[500] == "changed" and landed[1001] == "new"
    assert table_rows(home, "acme.t").num_rows == 1001  # merged by key: no old version kept
    assert run_here(job, home, monkeypatch)["rows_read"] == 0  # nothing new: the state holds

    # the same job on the native engine resumes from the cursor Spark committed, and back
    native_job = spark_project(tmp_path, FIELDS, pg_source(schema, "o"), connector="postgres", engine="native",
                               target={"write_mode": "merge"})[1]
    sql(f"UPDATE {schema}.o SET v = 'native', updated_at = '2024-03-01Z' WHERE id = 7")
    assert run_here(native_job, home, monkeypatch)["rows_read"] == 1
    sql(f"UPDATE {schema}.o SET v = 'spark again', updated_at = '2024-04-01Z' WHERE id = 8")
    spark_job = spark_project(tmp_path, FIELDS, pg_source(schema, "o"), connector="postgres",
                              target={"write_mode": "merge"})[1]
    assert run_here(spark_job, home, monkeypatch)["rows_read"] == 1
    landed = dict(_landed(home))
    assert len(landed) == 1001 and landed[7] == "native" and landed[8] == "spark again"
    assert _state(home)["streams"]["o"]["cursor"]["value"] == "2024-04-01T00:00:00+00:00"


def test_threshold_literal_takes_the_lookback_and_keeps_numbers_bare():
    assert threshold_literal("2024-01-01T10:00:00+02:00", "temporal", 60, STANDARD) == "'2024-01-01 07:59:00'"
    assert threshold_literal("42", "number", 0, STANDARD) == "42"
    assert threshold_literal("o'k", "text", 0, STANDARD) == "'o''k'"


def test_every_postgres_type_lands_as_the_native_engine_lands_it(tmp_path, schema, monkeypatch):
    from tests.integration.test_postgres_source import ALL_TYPES

    types = [*ALL_TYPES, ("big", "numeric", "decimal(38,2)")]
    sql(f"CREATE TABLE {schema}.t ({', '.join(f'{c} {t}' for c, t, _ in types)})")
    sql(f"""INSERT INTO {schema}.t VALUES
        (1, 9007199254740993, 12345678.1234, 'héllo', true, '2024-02-29', '10:11:12.5', '2024-01-01 01:02:03.456789',
         '2024-01-01 01:02:03+02', '{{"a": [1, 2]}}', '{{"b": 2}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '\\x00ff', '{{1,2,3}}', 123456789012345678901234567890.25),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    fields = [{"name": c, "type": a, **({"primary_key": True} if c == "i" else {})} for c, _, a in types]
    source = {**pg_source(schema, "t"), "tables": [{"name": f"{schema}.t", "object": "t"}]}
    landed = {}
    for engine in ("native", "spark"):
        job = spark_project(tmp_path / engine, fields, source, connector="postgres", engine=engine)[1]
        home = tmp_path / engine / "home"
        assert run_here(job, home, monkeypatch)["rows_written"] == 2
        data = table_rows(home, "acme.t")
        landed[engine] = (data.drop_columns(["_dativo_ingest_ts", "_dativo_run_id"]).schema,
                          sorted(data.drop_columns(["_dativo_ingest_ts", "_dativo_run_id"]).to_pylist(),
                                 key=lambda r: r["i"]))
    assert landed["spark"][0] == landed["native"][0]
    for native_row, spark_row in zip(landed["native"][1], landed["spark"][1], strict=True):
        for name in native_row:
            if name in ("j", "jb", "arr") and native_row[name] is not None:  # JSON text: compared as JSON
                import json

                assert json.loads(spark_row[name]) == json.loads(native_row[name]), name
            else:
                assert spark_row[name] == native_row[name], name


def test_detect_deletes_removes_rows_gone_from_the_source(tmp_path, schema, monkeypatch):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, amount numeric(10,2), updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o SELECT i, 'v' || i, i, '2024-01-01Z'::timestamptz + i * interval '1 minute'"
        f" FROM generate_series(1, 100) i")
    source = {**pg_source(schema, "o"), "incremental": {"strategy": "updated_at", "cursor_field": "updated_at",
                                                       "detect_deletes": True}}
    project, job = spark_project(tmp_path, FIELDS, source, connector="postgres", target={"write_mode": "merge"})
    home = tmp_path / "home"
    assert run_here(job, home, monkeypatch)["rows_written"] == 100
    sql(f"DELETE FROM {schema}.o WHERE id IN (5, 50)")
    sql(f"UPDATE {schema}.o SET v = 'changed', updated_at = '2024-02-01Z' WHERE id = 7")
    summary = run_here(job, home, monkeypatch)
    assert summary["rows_read"] == 1 and summary["rows_deleted"] == 2
    landed = dict(_landed(home))
    assert len(landed) == 98 and 5 not in landed and 50 not in landed and landed[7] == "changed"
