# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""Incremental PostgreSQL → Iceberg: cursor per table, the seed's strategies, enums and hard deletes.

Each test changes the source between runs and asserts the table's exact contents after each run.
"""

from __future__ import annotations

import psycopg

from tests.acceptance.helpers import table_rows
from tests.integration.test_postgres_source import URI, _project, _run, pytestmark, schema, sql  # noqa: F401

FIELDS = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
          {"name": "updated_at", "type": "timestamptz"}]


def _source(schema_name: str, table: str, columns: str = "id, v") -> list[tuple]:
    with psycopg.connect(URI) as con:
        return sorted(con.execute(f"SELECT {columns} FROM {schema_name}.{table}").fetchall())


def _landed(home, columns=("id", "v")) -> list[tuple]:
    return sorted(tuple(r[c] for c in columns) for r in table_rows(home, "acme.t").to_pylist())


def test_a_tables_own_cursor_field_makes_the_load_incremental(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o VALUES (1, 'a', '2024-01-01Z'), (2, 'b', '2024-01-02Z')")
    project, job = _project(tmp_path, FIELDS, {"tables": [{"name": f"{schema}.o", "object": "o",
                                                            "cursor_field": "updated_at"}]})
    home = tmp_path / "home"
    first = _run(project, job, home)
    assert first["rows_read"] == 2
    sql(f"UPDATE {schema}.o SET v = 'B', updated_at = '2024-01-03Z' WHERE id = 2")
    second = _run(project, job, home)
    assert second["rows_read"] == 1  # only the changed row: the cursor was kept per table
    assert _landed(home) == _source(schema, "o") == [(1, "a"), (2, "B")]
    assert [_run(project, job, home)["rows_read"] for _ in range(2)] == [0, 0]  # an empty run keeps the cursor


def test_created_strategy_appends_only_new_rows(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.ev (id bigint, v text, created timestamptz)")
    sql(f"INSERT INTO {schema}.ev VALUES (1, 'a', '2024-01-01Z'), (2, 'b', '2024-01-02Z')")
    fields = [{"name": "id", "type": "long"}, {"name": "v", "type": "string"},
              {"name": "created", "type": "timestamptz"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.ev", "object": "ev"}],
                                               "incremental": {"strategy": "created", "cursor_field": "created"}})
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 2
    sql(f"INSERT INTO {schema}.ev VALUES (3, 'c', '2024-01-03Z')")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 1 and summary["rows_written"] == 1
    assert _landed(home) == _source(schema, "ev") == [(1, "a"), (2, "b"), (3, "c")]


def test_updated_after_strategy_with_a_numeric_cursor(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.n (id int PRIMARY KEY, v text, version bigint)")
    sql(f"INSERT INTO {schema}.n VALUES (1, 'a', 9), (2, 'b', 10)")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "v", "type": "string"},
              {"name": "version", "type": "long"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.n", "object": "n"}],
                                               "incremental": {"strategy": "updated_after", "cursor_field": "version"}})
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 2
    sql(f"UPDATE {schema}.n SET v = 'A', version = 100 WHERE id = 1")  # 100 > 10 as a number, not as text
    assert _run(project, job, home)["rows_read"] == 1
    assert _landed(home) == _source(schema, "n") == [(1, "A"), (2, "b")]
    assert table_rows(home, "acme.t").schema.field("version").type == "int64"


def test_enums_land_as_strings(tmp_path, schema):
    sql(f"CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy')")
    sql(f"CREATE TABLE {schema}.p (id int PRIMARY KEY, m {schema}.mood, ms {schema}.mood[])")
    sql(f"INSERT INTO {schema}.p VALUES (1, 'happy', ARRAY['ok','sad']::{schema}.mood[]), (2, NULL, NULL)")
    fields = [{"name": "id", "type": "long", "primary_key": True}, {"name": "m", "type": "string"},
              {"name": "ms", "type": "json"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.p", "object": "p"}]})
    home = tmp_path / "home"
    _run(project, job, home)
    assert _landed(home, ("id", "m", "ms")) == [(1, "happy", '["ok","sad"]'), (2, None, None)]


def test_hard_deletes_are_detected_and_the_table_equals_the_source_after_each_run(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o SELECT g, 'v' || g, '2024-01-01Z'::timestamptz + g * interval '1 minute' "
        f"FROM generate_series(1, 50) g")
    project, job = _project(tmp_path, FIELDS, {
        "tables": [{"name": f"{schema}.o", "object": "o"}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at", "detect_deletes": True}})
    home = tmp_path / "home"
    first = _run(project, job, home)
    assert (first["rows_read"], first["rows_deleted"]) == (50, 0)
    assert _landed(home) == _source(schema, "o")

    # insert, update and delete between runs
    sql(f"INSERT INTO {schema}.o VALUES (51, 'new', '2024-02-01Z')")
    sql(f"UPDATE {schema}.o SET v = 'changed', updated_at = '2024-02-02Z' WHERE id = 7")
    sql(f"DELETE FROM {schema}.o WHERE id IN (3, 40)")
    second = _run(project, job, home)
    assert (second["rows_read"], second["rows_written"], second["rows_deleted"]) == (2, 2, 2)
    assert _landed(home) == _source(schema, "o") and len(_landed(home)) == 49

    # a delete alone (nothing new to read) still lands
    sql(f"DELETE FROM {schema}.o WHERE id = 51")
    third = _run(project, job, home)
    assert (third["rows_read"], third["rows_deleted"]) == (0, 1)
    assert _landed(home) == _source(schema, "o")

    # emptied source → empty table
    sql(f"DELETE FROM {schema}.o")
    assert _run(project, job, home)["rows_deleted"] == 48
    assert _landed(home) == []


def test_without_detect_deletes_a_hard_delete_is_kept(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.o (id int PRIMARY KEY, v text, updated_at timestamptz)")
    sql(f"INSERT INTO {schema}.o VALUES (1, 'a', '2024-01-01Z'), (2, 'b', '2024-01-02Z')")
    project, job = _project(tmp_path, FIELDS, {"tables": [{"name": f"{schema}.o", "object": "o"}],
                                               "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}})
    home = tmp_path / "home"
    _run(project, job, home)
    sql(f"DELETE FROM {schema}.o WHERE id = 1")
    assert _run(project, job, home)["rows_deleted"] == 0
    assert _landed(home) == [(1, "a"), (2, "b")]  # documented: a cursor cannot see hard deletes


def test_detect_deletes_with_a_composite_key(tmp_path, schema):
    sql(f"CREATE TABLE {schema}.c (a int, b text, v text, PRIMARY KEY (a, b))")
    sql(f"INSERT INTO {schema}.c VALUES (1, 'x', 'p'), (1, 'y', 'q'), (2, 'x', 'r')")
    fields = [{"name": "a", "type": "long", "primary_key": True}, {"name": "b", "type": "string", "primary_key": True},
              {"name": "v", "type": "string"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.c", "object": "c"}],
                                               "incremental": {"detect_deletes": True}})
    home = tmp_path / "home"
    _run(project, job, home)
    sql(f"DELETE FROM {schema}.c WHERE a = 1 AND b = 'y'")
    assert _run(project, job, home)["rows_deleted"] == 1
    assert _landed(home, ("a", "b", "v")) == _source(schema, "c", "a, b, v") == [(1, "x", "p"), (2, "x", "r")]


def test_a_text_cursor_follows_the_databases_collation(tmp_path, schema):
    """Issue #12 class 4: with an ICU collation 'Banana' sorts after 'apple'; the server filters by it, and nothing
    filters again byte by byte (where 'B' < 'a'): every row lands once, append mode, no key to hide a duplicate."""
    sql(f'CREATE TABLE {schema}.w (id int, name text COLLATE "en-x-icu")')
    sql(f"INSERT INTO {schema}.w VALUES (1, 'apple')")
    fields = [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]
    project, job = _project(tmp_path, fields, {"tables": [{"name": f"{schema}.w", "object": "w",
                                                            "cursor_field": "name"}]})
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_written"] == 1
    sql(f"INSERT INTO {schema}.w VALUES (2, 'Banana'), (3, 'cherry')")
    second = _run(project, job, home)
    assert (second["rows_read"], second["rows_written"], second["rows_skipped"]) == (2, 2, 0)
    assert sorted(r["name"] for r in table_rows(home, "acme.t").to_pylist()) == ["Banana", "apple", "cherry"]
    assert _run(project, job, home)["rows_read"] == 0  # the position is 'cherry' in the server's order
    assert table_rows(home, "acme.t").num_rows == 3
