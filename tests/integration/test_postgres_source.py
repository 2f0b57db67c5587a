"""The native PostgreSQL source against the real server on 127.0.0.1:5432 (trust, user postgres, db test)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml
from tests.pg import URI, needs_postgres, psycopg, sql  # noqa: F401

pytestmark = needs_postgres


@pytest.fixture
def schema():
    name = f"dtv_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(URI, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {name}")
    yield name
    with psycopg.connect(URI, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {name} CASCADE")




def _project(tmp_path, schema_fields, source, *, port="5432"):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/postgres/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "postgres",
        "schema": schema_fields})
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "postgres", "target_connector": "iceberg", "engine": "native",
        "asset": "t", "asset_path": "assets/postgres/v1.0/t.yaml",
        "source": {"connection": {"host": "127.0.0.1", "port": port, "database": "test", "user": "postgres",
                                  "password": ""}, **source}})
    return project, job


def _run(project, job, home):
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


ALL_TYPES = [
    ("i", "integer", "long"), ("b", "bigint", "long"), ("n", "numeric(12,4)", "decimal(12,4)"),
    ("s", "text", "string"), ("f", "boolean", "boolean"), ("d", "date", "date"), ("tm", "time", "time"),
    ("ts", "timestamp", "timestamp"), ("tz", "timestamptz", "timestamptz"), ("j", "json", "json"),
    ("jb", "jsonb", "json"), ("u", "uuid", "uuid"), ("by", "bytea", "binary"), ("arr", "int[]", "json"),
]


def test_every_type_lands_with_its_iceberg_type(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.t ({', '.join(f'{c} {t}' for c, t, _ in ALL_TYPES)})")
    sql(f"""INSERT INTO {schema}.t VALUES
        (1, 9007199254740993, 12345678.1234, 'héllo', true, '2024-02-29', '10:11:12.5', '2024-01-01 01:02:03.456789',
         '2024-01-01 01:02:03+02', '{{"a": [1, 2]}}', '{{"b": 2}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '\\x00ff', '{{1,2,3}}'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""")
    fields = [{"name": c, "type": a, **({"primary_key": True} if c == "i" else {})} for c, _, a in ALL_TYPES]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.t", "object": "t"}]})
    summary = _run(project, job, tmp_path / "home")
    assert summary["rows_written"] == 2
    table = catalog(tmp_path / "home").load_table("acme.t")
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types["n"] == "decimal(12, 4)" and types["tz"] == "timestamptz" and types["ts"] == "timestamp"
    assert types["by"] == "binary" and types["tm"] == "time" and types["d"] == "date" and types["b"] == "long"
    data = table_rows(tmp_path / "home", "acme.t")
    assert data.schema.field("tz").type == pa.timestamp("us", tz="UTC")
    rows = {r["i"]: r for r in data.to_pylist()}
    r = rows[1]
    assert r["b"] == 9007199254740993 and r["n"] == Decimal("12345678.1234") and r["s"] == "héllo"
    assert r["f"] is True and r["d"] == date(2024, 2, 29) and r["tm"] == time(10, 11, 12, 500000)
    assert r["ts"] == datetime(2024, 1, 1, 1, 2, 3, 456789)
    assert r["tz"] == datetime(2023, 12, 31, 23, 2, 3, tzinfo=timezone.utc)
    assert json.loads(r["j"]) == {"a": [1, 2]} and json.loads(r["jb"]) == {"b": 2}
    assert r["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and r["by"] == b"\x00\xff"
    assert json.loads(r["arr"]) == [1, 2, 3]
    assert all(v is None for k, v in rows[2].items() if k in {c for c, _, _ in ALL_TYPES} - {"i"})


def test_incremental_merge_reads_only_changes(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, v text, updated_at timestamptz)")
    sql(f"""INSERT INTO {schema}.orders VALUES (1, 'a', '2024-01-01T00:00:00Z'), (2, 'b', '2024-01-02T00:00:00Z'),
            (3, 'c', '2024-01-03T00:00:00Z')""")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
              {"name": "updated_at", "type": "timestamptz"}]
    project, job = _project(tmp_path, fields, {
        "tables": [{"name": f"{schema}.orders", "object": "orders", "cursor_field": "updated_at",
                    "primary_key": ["id"]}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}})
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 3
    sql(f"INSERT INTO {schema}.orders VALUES (4, 'd', '2024-01-04T00:00:00Z')")
    sql(f"UPDATE {schema}.orders SET v = 'B', updated_at = '2024-01-05T00:00:00Z' WHERE id = 2")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 2 and summary["rows_written"] == 2
    with psycopg.connect(URI) as con:
        source = sorted(con.execute(f"SELECT id, v, updated_at FROM {schema}.orders").fetchall())
    landed = sorted((r["id"], r["v"], r["updated_at"]) for r in table_rows(home, "acme.t").to_pylist())
    assert landed == source
    assert _run(project, job, home)["rows_read"] == 0


def test_refused_connection_is_one_line_exit_2(tmp_path):
    project, job = _project(tmp_path, [{"name": "id", "type": "long"}], {"tables": [{"name": "t"}]}, port="1")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    message = lines[-1]
    assert "127.0.0.1:1" in message and "postgres" in message and "test" in message and "POSTGRES_PORT" in message
    assert "Traceback" not in out.stderr


def test_lookback_rereads_late_rows_without_duplicates(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.ev (id int PRIMARY KEY, v text, updated_at timestamp)")
    sql(f"INSERT INTO {schema}.ev VALUES (1, 'a', '2024-01-01 00:00:00'), (2, 'b', '2024-01-05 00:00:00')")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
              {"name": "updated_at", "type": "timestamp"}]
    project, job = _project(tmp_path, fields, {
        "tables": [{"name": f"{schema}.ev", "object": "ev"}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at", "lookback": "1d"}})
    home = tmp_path / "home"
    _run(project, job, home)
    # committed late with an older cursor value, inside the 1-day lookback window
    sql(f"INSERT INTO {schema}.ev VALUES (3, 'c', '2024-01-04 12:00:00')")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 2  # row 2 is inside the window: re-read and merged in place, not duplicated
    landed = sorted((r["id"], r["v"]) for r in table_rows(home, "acme.t").to_pylist())
    assert landed == [(1, "a"), (2, "b"), (3, "c")]


def test_wrong_user_error_names_it_and_hides_the_password(tmp_path):
    project, job = _project(tmp_path, [{"name": "id", "type": "long"}], {"tables": [{"name": "t"}]})
    data = json.loads(json.dumps(__import__("yaml").safe_load(job.read_text())))
    data["source"]["connection"].update(user="nobody_here", password="s3cret-pw")
    write_yaml(job, data)
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and "nobody_here" in out.stderr and "POSTGRES_USER" in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout
