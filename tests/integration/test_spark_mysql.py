# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""``engine: spark`` on MariaDB (the MySQL connector): partitioned JDBC reads, incremental with updates between
runs, merged by primary key, one commit per run with the cursor."""

from __future__ import annotations

from datetime import datetime

import orjson

from tests.acceptance.helpers import catalog, table_rows
from tests.integration.spark_helpers import run_here, spark_project, spark_session_per_module  # noqa: F401
from tests.integration.test_mysql_source import IT_DB, pytestmark, sql, table  # noqa: F401

FIELDS = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
          {"name": "price", "type": "decimal(8,2)"}, {"name": "updated_at", "type": "timestamp"}]


def test_incremental_with_updates_merges_and_keeps_the_cursor(tmp_path, table, monkeypatch):
    sql(f"CREATE TABLE {table} (id int PRIMARY KEY, v varchar(20), price decimal(8,2), updated_at datetime(6))")
    values = ", ".join(f"({i}, 'v{i}', {i}.25, '2024-01-01 00:00:00' + INTERVAL {i} SECOND)" for i in range(1, 501))
    sql(f"INSERT INTO {table} VALUES {values}")
    source = {"connection": {"host": "127.0.0.1", "port": "3306", "database": IT_DB, "user": "root", "password": ""},
              "tables": [{"name": table, "object": "o", "cursor_field": "updated_at"}]}
    project, job = spark_project(tmp_path, FIELDS, source, connector="mysql", target={"write_mode": "merge"})
    home = tmp_path / "home"
    first = run_here(job, home, monkeypatch)
    assert first["rows_read"] == first["rows_written"] == 500 and first["commits"] == 1
    snapshot = catalog(home).load_table("acme.t").current_snapshot()
    state = orjson.loads(snapshot.summary.additional_properties["dativo.state"])
    assert state["streams"]["o"]["cursor"] == {"field": "updated_at", "value": "2024-01-01T00:08:20"}
    assert catalog(home).load_table("acme.t").inspect.files().num_rows >= 2  # written by parallel tasks

    sql(f"UPDATE {table} SET v = 'changed', updated_at = '2024-02-01 00:00:00.5' WHERE id IN (1, 250)",
        f"INSERT INTO {table} VALUES (501, 'new', 9.99, '2024-02-02')")
    second = run_here(job, home, monkeypatch)
    assert second["rows_read"] == 3
    rows = {r["id"]: r for r in table_rows(home, "acme.t").to_pylist()}
    assert len(rows) == 501 and rows[1]["v"] == rows[250]["v"] == "changed" and rows[501]["v"] == "new"
    assert rows[250]["updated_at"] == datetime(2024, 2, 1, 0, 0, 0, 500000)  # zoneless, as the source holds it
    assert str(rows[501]["price"]) == "9.99"
    assert run_here(job, home, monkeypatch)["rows_read"] == 0


def test_every_mysql_type_lands_as_the_native_engine_lands_it(tmp_path, table, monkeypatch):
    import json

    from tests.integration.test_mysql_source import TYPES

    sql(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t, _ in TYPES)})",
        "SET time_zone = '+02:00'",
        f"""INSERT INTO {table} VALUES (1, -5, 1, 0, 18446744073709551615, '12345678901234567890.123456789012345678',
            1.5, 2.25, b'1', b'10101010', 'héllo', 'text', '{{"a": [1, 2]}}', 'PG', 'a,c', x'00ff', x'0102', 2006,
            '2024-02-29', '10:11:12.500', '2024-01-01 01:02:03.456789', '2024-01-01 01:02:03.456789',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ST_GeomFromText('POINT(1 2)'))""",
        f"INSERT INTO {table} (id) VALUES (2)")
    fields = [{"name": c, "type": a, **({"primary_key": True} if c == "id" else {})} for c, _, a in TYPES]
    source = {"connection": {"host": "127.0.0.1", "port": "3306", "database": IT_DB, "user": "root", "password": ""},
              "tables": [{"name": table, "object": "t"}]}
    landed = {}
    for engine in ("native", "spark"):
        job = spark_project(tmp_path / engine, fields, source, connector="mysql", engine=engine)[1]
        home = tmp_path / engine / "home"
        assert run_here(job, home, monkeypatch)["rows_written"] == 2
        data = table_rows(home, "acme.t").drop_columns(["_dativo_ingest_ts", "_dativo_run_id"])
        landed[engine] = (data.schema, sorted(data.to_pylist(), key=lambda r: r["id"]))
    assert landed["spark"][0] == landed["native"][0]
    differ = {}
    for native_row, spark_row in zip(landed["native"][1], landed["spark"][1], strict=True):
        for name, value in native_row.items():
            same = json.loads(spark_row[name]) == json.loads(value) if name == "js" and value else \
                spark_row[name] == value
            if not same:
                differ[f"{native_row['id']}.{name}"] = (value, spark_row[name])
    assert differ == {}
