"""The native SQLite source against a real database file."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml


def _project(tmp_path, schema_fields, source, db_path):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/sqlite/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "sqlite",
        "schema": schema_fields})
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "sqlite", "target_connector": "iceberg", "engine": "native",
        "asset": "t", "asset_path": "assets/sqlite/v1.0/t.yaml",
        "source": {"connection": {"database_path": str(db_path)}, **source}})
    return project, job


def _run(project, job, home):
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _exec(db, *statements):
    con = sqlite3.connect(db)
    with con:
        for s in statements:
            con.execute(s)
    con.close()


def test_types_land(tmp_path):
    db = tmp_path / "src.db"
    _exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, n REAL, s TEXT, f BOOLEAN, d DATE, ts TIMESTAMP, "
              "j TEXT, by BLOB)",
          "INSERT INTO t VALUES (1, 1.5, 'x', 1, '2024-02-29', '2024-01-01 01:02:03', '{\"a\": 1}', x'00ff')",
          "INSERT INTO t VALUES (2, NULL, NULL, 0, NULL, NULL, NULL, NULL)")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "n", "type": "double"},
              {"name": "s", "type": "string"}, {"name": "f", "type": "boolean"}, {"name": "d", "type": "date"},
              {"name": "ts", "type": "timestamp"}, {"name": "j", "type": "json"}, {"name": "by", "type": "binary"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": "t"}]}, db)
    assert _run(project, job, tmp_path / "home")["rows_written"] == 2
    types = {f.name: str(f.field_type) for f in catalog(tmp_path / "home").load_table("acme.t").schema().fields}
    assert types["d"] == "date" and types["ts"] == "timestamp" and types["by"] == "binary"
    rows = {r["id"]: r for r in table_rows(tmp_path / "home", "acme.t").to_pylist()}
    assert rows[1]["n"] == 1.5 and rows[1]["f"] is True and rows[1]["d"] == date(2024, 2, 29)
    assert rows[1]["ts"] == datetime(2024, 1, 1, 1, 2, 3) and rows[1]["by"] == b"\x00\xff"
    assert json.loads(rows[1]["j"]) == {"a": 1} and rows[2]["f"] is False and rows[2]["s"] is None


def test_incremental_merge_reads_only_changes(tmp_path):
    db = tmp_path / "src.db"
    _exec(db, "CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT, updated_at TEXT)",
          "INSERT INTO orders VALUES (1, 'a', '2024-01-01 00:00:00'), (2, 'b', '2024-01-02 00:00:00'), "
          "(3, 'c', '2024-01-03 00:00:00')")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
              {"name": "updated_at", "type": "timestamp"}]
    project, job = _project(tmp_path, fields, {
        "tables": [{"name": "orders", "object": "orders", "cursor_field": "updated_at", "primary_key": ["id"]}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}, db)
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 3
    _exec(db, "INSERT INTO orders VALUES (4, 'd', '2024-01-04 00:00:00')",
          "UPDATE orders SET v = 'B', updated_at = '2024-01-05 00:00:00' WHERE id = 2")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 2 and summary["rows_written"] == 2
    con = sqlite3.connect(db)
    source = sorted((i, v, datetime.fromisoformat(u)) for i, v, u in con.execute("SELECT * FROM orders"))
    con.close()
    landed = sorted((r["id"], r["v"], r["updated_at"]) for r in table_rows(home, "acme.t").to_pylist())
    assert landed == source
    assert _run(project, job, home)["rows_read"] == 0


def test_missing_database_file_is_one_line_exit_2(tmp_path):
    project, job = _project(tmp_path, [{"name": "id", "type": "long"}], {"tables": [{"name": "t"}]},
                            tmp_path / "nope.db")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and "nope.db" in out.stderr and "Traceback" not in out.stderr
