"""The native MySQL/MariaDB source against the real server on 127.0.0.1:3306 (root, no password).

Sakila is loaded once into ``dativo_sakila`` (tests/integration/sakila.py); the other tests build their own
tables in ``dativo_mysql_it`` with unique names, so parallel runs do not collide.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
import yaml

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml
from tests.integration.sakila import ROW_COUNTS, SAKILA_DIR, connect, ensure_sakila

pymysql = pytest.importorskip("pymysql")
IT_DB = "dativo_mysql_it"
UTC = timezone.utc


def _reachable() -> bool:
    try:
        connect().close()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _reachable(), reason="MariaDB is not reachable on 127.0.0.1:3306 "
                                                          "(start it with .ci/run)")


def sql(*statements: str, database: str = IT_DB) -> list[tuple]:
    """Run statements (session in UTC); the rows of the last one."""
    con = connect(database)
    try:
        with con.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            for statement in statements:
                cur.execute(statement)
            return list(cur.fetchall())
    finally:
        con.close()


@pytest.fixture
def table():
    """A fresh table name in ``dativo_mysql_it``, dropped afterwards."""
    sql(f"CREATE DATABASE IF NOT EXISTS {IT_DB}", database=None)
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    sql(f"DROP TABLE IF EXISTS {name}")


def _asset(project, name, fields):
    return write_yaml(project / f"assets/mysql/v1.0/{name}.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": name, "version": "1.0", "source_type": "mysql",
        "schema": [{"name": n, "type": t, **({"primary_key": True} if i == 0 else {})}
                   for i, (n, t) in enumerate(fields)]})


def _job(project, name, source, *, connection=None):
    return write_yaml(project / f"jobs/acme/{name}.yaml", {
        "tenant_id": "acme", "source_connector": "mysql", "target_connector": "iceberg", "engine": "native",
        "asset": name, "asset_path": f"assets/mysql/v1.0/{name}.yaml",
        "source": {**({"connection": connection} if connection else {}), **source}})


def _it_connection(**overrides):
    return {"host": "127.0.0.1", "port": "3306", "database": IT_DB, "user": "root", "password": "", **overrides}


def _run(project, job, home):
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- Sakila -----------------------------------------------------------------------------------------
SAKILA = {
    "actor": [("actor_id", "integer"), ("first_name", "string"), ("last_name", "string"),
              ("last_update", "timestamptz")],
    "film": [("film_id", "integer"), ("title", "string"), ("description", "string"), ("release_year", "integer"),
             ("language_id", "integer"), ("original_language_id", "integer"), ("rental_duration", "integer"),
             ("rental_rate", "decimal(4,2)"), ("length", "integer"), ("replacement_cost", "decimal(5,2)"),
             ("rating", "string"), ("special_features", "string"), ("last_update", "timestamptz")],
    "customer": [("customer_id", "integer"), ("store_id", "integer"), ("first_name", "string"),
                 ("last_name", "string"), ("email", "string"), ("address_id", "integer"), ("active", "boolean"),
                 ("create_date", "timestamp"), ("last_update", "timestamptz")],
    "payment": [("payment_id", "integer"), ("customer_id", "integer"), ("staff_id", "integer"),
                ("rental_id", "integer"), ("amount", "decimal(5,2)"), ("payment_date", "timestamp"),
                ("last_update", "timestamptz")],
    "rental": [("rental_id", "integer"), ("rental_date", "timestamp"), ("inventory_id", "integer"),
               ("customer_id", "integer"), ("return_date", "timestamp"), ("staff_id", "integer"),
               ("last_update", "timestamptz")],
    "staff": [("staff_id", "integer"), ("first_name", "string"), ("last_name", "string"), ("address_id", "integer"),
              ("picture", "binary"), ("email", "string"), ("store_id", "integer"), ("active", "boolean"),
              ("username", "string"), ("password", "string"), ("last_update", "timestamptz")],
}


@pytest.mark.skipif(not SAKILA_DIR.is_dir(), reason=f"the Sakila seed is not at {SAKILA_DIR}")
def test_sakila_tables_land_with_types_and_values(tmp_path):
    database = ensure_sakila()
    project = make_project(tmp_path / "project")
    # the recipe's connection_template, filled from the tenant's secrets (the seed guide's MYSQL_* variables)
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "mysql.env").write_text(
        f"MYSQL_HOST=127.0.0.1\nMYSQL_PORT=3306\nMYSQL_DB={database}\nMYSQL_USER=root\n")
    for name, fields in SAKILA.items():
        _asset(project, name, fields)
        _job(project, name, {"tables": [{"name": f"{database}.{name}", "object": name}]})
    home = tmp_path / "home"
    out = cli("run", "--job-dir", "jobs/acme", cwd=project, home=home, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summaries = {s["table"]: s for s in map(json.loads, out.stdout.strip().splitlines())}
    for name in SAKILA:
        assert summaries[f"acme.{name}"]["rows_written"] == ROW_COUNTS[name], name

    types = {f.name: str(f.field_type) for f in catalog(home).load_table("acme.film").schema().fields}
    assert types["rental_rate"] == "decimal(4, 2)" and types["replacement_cost"] == "decimal(5, 2)"
    assert types["last_update"] == "timestamptz" and types["rating"] == "string" and types["release_year"] == "long"
    types = {f.name: str(f.field_type) for f in catalog(home).load_table("acme.payment").schema().fields}
    assert types["payment_date"] == "timestamp" and types["amount"] == "decimal(5, 2)"
    types = {f.name: str(f.field_type) for f in catalog(home).load_table("acme.staff").schema().fields}
    assert types["picture"] == "binary" and types["active"] == "boolean"

    films = {r["film_id"]: r for r in table_rows(home, "acme.film").to_pylist()}
    f1 = films[1]
    assert (f1["title"], f1["release_year"], f1["length"]) == ("ACADEMY DINOSAUR", 2006, 86)
    assert f1["rental_rate"] == Decimal("0.99") and f1["replacement_cost"] == Decimal("20.99")
    assert f1["rating"] == "PG" and f1["special_features"] == "Deleted Scenes,Behind the Scenes"
    assert f1["last_update"] == datetime(2006, 2, 15, 5, 3, 42, tzinfo=UTC) and f1["original_language_id"] is None
    ratings: dict[str, int] = {}
    for r in films.values():
        ratings[r["rating"]] = ratings.get(r["rating"], 0) + 1
    assert ratings == dict(sql("SELECT rating, COUNT(*) FROM film GROUP BY rating", database=database))

    payments = table_rows(home, "acme.payment")
    assert payments.schema.field("last_update").type == pa.timestamp("us", tz="UTC")
    p1 = next(r for r in payments.to_pylist() if r["payment_id"] == 1)
    assert p1["amount"] == Decimal("2.99") and p1["payment_date"] == datetime(2005, 5, 25, 11, 30, 37)
    assert p1["last_update"] == datetime(2006, 2, 15, 22, 12, 30, tzinfo=UTC)
    assert sum(payments.column("amount").to_pylist()) == sql("SELECT SUM(amount) FROM payment",
                                                             database=database)[0][0] == Decimal("67416.51")

    customer = next(r for r in table_rows(home, "acme.customer").to_pylist() if r["customer_id"] == 1)
    assert customer["active"] is True and customer["email"] == "MARY.SMITH@sakilacustomer.org"
    assert customer["create_date"] == datetime(2006, 2, 14, 22, 4, 36)
    rentals = table_rows(home, "acme.rental")
    assert rentals.column("return_date").null_count == 183
    staff = {r["staff_id"]: r for r in table_rows(home, "acme.staff").to_pylist()}
    picture = sql("SELECT picture FROM staff WHERE staff_id = 1", database=database)[0][0]
    assert staff[1]["picture"] == picture and len(picture) == 36365 and staff[2]["picture"] is None
    assert [r["first_name"] for r in sorted(table_rows(home, "acme.actor").to_pylist(),
                                           key=lambda r: r["actor_id"])][:2] == ["PENELOPE", "NICK"]


# -- every type ---------------------------------------------------------------------------------------
TYPES = [
    ("id", "INT", "long"), ("ti", "TINYINT", "integer"), ("b1", "TINYINT(1)", "boolean"), ("bo", "BOOLEAN", "boolean"),
    ("bu", "BIGINT UNSIGNED", "decimal(20,0)"), ("dc", "DECIMAL(38,18)", "decimal(38,18)"),
    ("fl", "FLOAT", "float"), ("db", "DOUBLE", "double"), ("bt", "BIT(1)", "boolean"), ("bt8", "BIT(8)", "integer"),
    ("vc", "VARCHAR(20)", "string"), ("tx", "TEXT", "string"), ("js", "JSON", "json"),
    ("en", "ENUM('G','PG','R')", "string"), ("st", "SET('a','b','c')", "string"), ("bl", "BLOB", "binary"),
    ("vb", "VARBINARY(10)", "binary"), ("yr", "YEAR", "integer"), ("d", "DATE", "date"), ("tm", "TIME(3)", "time"),
    ("dtm", "DATETIME(6)", "timestamp"), ("ts", "TIMESTAMP(6) NULL", "timestamptz"), ("u", "UUID", "uuid"),
    ("g", "GEOMETRY", "string"),
]


def test_every_type_lands_with_its_iceberg_type(tmp_path, table):
    sql(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t, _ in TYPES)})",
        "SET time_zone = '+02:00'",  # TIMESTAMP values are converted to UTC whatever the writer's zone
        f"""INSERT INTO {table} VALUES (1, -5, 1, 0, 18446744073709551615, '12345678901234567890.123456789012345678',
            1.5, 2.25, b'1', b'10101010', 'héllo', 'text', '{{"a": [1, 2]}}', 'PG', 'a,c', x'00ff', x'0102', 2006,
            '2024-02-29', '10:11:12.500', '2024-01-01 01:02:03.456789', '2024-01-01 01:02:03.456789',
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ST_GeomFromText('POINT(1 2)'))""",
        f"INSERT INTO {table} (id) VALUES (2)",
        "SET SESSION sql_mode = ''",  # a zero date, as old MySQL data holds them: lands as NULL
        f"INSERT INTO {table} (id, d, dtm) VALUES (3, '0000-00-00', '0000-00-00 00:00:00')")
    project = make_project(tmp_path / "project")
    _asset(project, "t", [(c, a) for c, _, a in TYPES])
    job = _job(project, "t", {"tables": [{"name": table, "object": "t"}]}, connection=_it_connection())
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_written"] == 3
    types = {f.name: str(f.field_type) for f in catalog(home).load_table("acme.t").schema().fields}
    assert types["dc"] == "decimal(38, 18)" and types["bu"] == "decimal(20, 0)" and types["ts"] == "timestamptz"
    assert types["dtm"] == "timestamp" and types["tm"] == "time" and types["bl"] == "binary"
    assert types["b1"] == "boolean" and types["d"] == "date" and types["g"] == "string"
    data = table_rows(home, "acme.t")
    assert data.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    rows = {r["id"]: r for r in data.to_pylist()}
    r = rows[1]
    assert r["ti"] == -5 and r["b1"] is True and r["bo"] is False and r["bu"] == Decimal("18446744073709551615")
    assert r["dc"] == Decimal("12345678901234567890.123456789012345678")
    assert r["fl"] == 1.5 and r["db"] == 2.25 and r["bt"] is True and r["bt8"] == 170
    assert r["vc"] == "héllo" and r["tx"] == "text" and json.loads(r["js"]) == {"a": [1, 2]}
    assert r["en"] == "PG" and r["st"] == "a,c" and r["bl"] == b"\x00\xff" and r["vb"] == b"\x01\x02"
    assert r["yr"] == 2006 and r["d"] == date(2024, 2, 29) and r["tm"] == time(10, 11, 12, 500000)
    assert r["dtm"] == datetime(2024, 1, 1, 1, 2, 3, 456789)
    assert r["ts"] == datetime(2023, 12, 31, 23, 2, 3, 456789, tzinfo=UTC)
    assert r["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and r["g"] == "POINT(1 2)"
    assert all(v is None for k, v in rows[2].items() if k in {c for c, _, _ in TYPES} - {"id"})
    assert rows[3]["d"] is None and rows[3]["dtm"] is None


# -- incremental ----------------------------------------------------------------------------------------
ORDER_FIELDS = [("id", "long"), ("v", "string"), ("amount", "decimal(10,2)"), ("updated_at", "timestamptz")]


def _orders(table):
    return sorted(sql(f"SELECT id, v, amount, updated_at FROM {table}"))


def _landed(home, name="orders"):
    return sorted((r["id"], r["v"], r["amount"], r["updated_at"].replace(tzinfo=None))
                  for r in table_rows(home, f"acme.{name}").to_pylist())


def test_incremental_reads_only_changes_and_merges(tmp_path, table):
    sql(f"""CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10), amount DECIMAL(10,2),
            updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))""",
        f"""INSERT INTO {table} VALUES (1, 'a', 1.10, '2024-01-01 00:00:00'), (2, 'b', 2.20, '2024-01-02 00:00:00'),
            (3, 'c', 3.30, '2024-01-03 00:00:00.000001')""")
    project = make_project(tmp_path / "project")
    _asset(project, "orders", ORDER_FIELDS)
    job = _job(project, "orders", {
        "tables": [{"name": f"{IT_DB}.{table}", "object": "orders", "cursor_field": "updated_at",
                    "primary_key": ["id"]}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}}, connection=_it_connection())
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 3
    assert _landed(home) == _orders(table)

    sql(f"INSERT INTO {table} VALUES (4, 'd', 4.40, '2024-01-04 00:00:00')",
        f"UPDATE {table} SET v = 'B', amount = 22.22, updated_at = '2024-01-05 00:00:00.5' WHERE id = 2")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 2 and summary["rows_written"] == 2
    assert _landed(home) == _orders(table)
    assert (2, "B", Decimal("22.22"), datetime(2024, 1, 5, 0, 0, 0, 500000)) in _landed(home)
    state = cli("state", "show", "--config", str(job), cwd=project, home=home)
    assert '"value": "2024-01-05T00:00:00.500000+00:00"' in state.stdout

    summary = _run(project, job, home)
    assert summary["rows_read"] == 0 and summary["rows_written"] == 0
    assert _landed(home) == _orders(table)


def test_insert_update_delete_with_detect_deletes(tmp_path, table):
    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10), amount DECIMAL(10,2), updated_at TIMESTAMP(6))",
        f"INSERT INTO {table} VALUES (1, 'a', 1, '2024-01-01'), (2, 'b', 2, '2024-01-02'), (3, 'c', 3, '2024-01-03')")
    project = make_project(tmp_path / "project")
    _asset(project, "orders", ORDER_FIELDS)
    job = _job(project, "orders", {
        "tables": [{"name": table, "object": "orders", "cursor_field": "updated_at"}],
        "incremental": {"strategy": "updated_at", "cursor_field": "updated_at", "detect_deletes": True}},
        connection=_it_connection())
    home = tmp_path / "home"
    _run(project, job, home)
    sql(f"DELETE FROM {table} WHERE id = 1", f"UPDATE {table} SET v = 'C', updated_at = '2024-01-06' WHERE id = 3",
        f"INSERT INTO {table} VALUES (4, 'd', 4, '2024-01-07')")
    summary = _run(project, job, home)
    assert summary["rows_read"] == 2 and summary["rows_deleted"] == 1
    assert _landed(home) == _orders(table) and [r[0] for r in _landed(home)] == [2, 3, 4]


def test_a_run_reading_nothing_keeps_the_cursor(tmp_path, table):
    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10), amount DECIMAL(10,2), updated_at TIMESTAMP(6))",
        f"INSERT INTO {table} VALUES (1, 'a', 1, '2024-01-01 00:00:00')")
    project = make_project(tmp_path / "project")
    _asset(project, "orders", ORDER_FIELDS)
    job = _job(project, "orders", {"tables": [{"name": table, "object": "orders"}],
                                   "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}},
               connection=_it_connection())
    home = tmp_path / "home"
    assert [_run(project, job, home)["rows_read"] for _ in range(3)] == [1, 0, 0]


def test_lookback_rereads_late_rows_without_duplicates(tmp_path, table):
    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10), amount DECIMAL(10,2), updated_at DATETIME)",
        f"INSERT INTO {table} VALUES (1, 'a', 1, '2024-01-01 00:00:00'), (2, 'b', 2, '2024-01-05 00:00:00')")
    project = make_project(tmp_path / "project")
    _asset(project, "ev", [("id", "long"), ("v", "string"), ("amount", "decimal(10,2)"), ("updated_at", "timestamp")])
    job = _job(project, "ev", {
        "tables": [{"name": table, "object": "ev"}],
        "incremental": {"strategy": "updated_after", "cursor_field": "updated_at", "lookback_days": 1}},
        connection=_it_connection())
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 2
    # committed late with an older cursor value, inside the 1-day lookback window
    sql(f"INSERT INTO {table} VALUES (3, 'c', 3, '2024-01-04 12:00:00')")
    assert _run(project, job, home)["rows_read"] == 2  # row 2 is re-read and merged in place
    assert _landed(home, "ev") == _orders(table)
    assert len(table_rows(home, "acme.ev")) == 3


def test_custom_query_with_numeric_cursor(tmp_path, table):
    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10))",
        f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (10, 'j')")
    project = make_project(tmp_path / "project")
    _asset(project, "q", [("id", "long"), ("v_upper", "string")])
    job = _job(project, "q", {
        "query": f"SELECT id, UPPER(v) AS v_upper FROM `{table}` WHERE v <> 'zzz';",
        "incremental": {"strategy": "created", "cursor_field": "id"}}, connection=_it_connection())
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_read"] == 3
    sql(f"INSERT INTO {table} VALUES (9, 'i'), (11, 'k')")
    assert _run(project, job, home)["rows_read"] == 1  # 11 only: 9 is below the committed cursor 10
    assert sorted((r["id"], r["v_upper"]) for r in table_rows(home, "acme.q").to_pylist()) == [
        (1, "A"), (2, "B"), (10, "J"), (11, "K")]


def test_a_user_with_a_password_of_url_characters(tmp_path, table):
    password = "p@ss:w/rd?#%1"
    sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(10))", f"INSERT INTO {table} VALUES (1, 'a')",
        f"CREATE USER IF NOT EXISTS 'dativo_mysql_it'@'%' IDENTIFIED BY '{password}'",
        f"ALTER USER 'dativo_mysql_it'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON {IT_DB}.* TO 'dativo_mysql_it'@'%'")
    project = make_project(tmp_path / "project")
    _asset(project, "t", [("id", "long"), ("v", "string")])
    job = _job(project, "t", {"tables": [{"name": table, "object": "t"}]},
               connection=_it_connection(user="dativo_mysql_it", password=password))
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 0, out.stderr[-2000:]
    assert password not in out.stdout + out.stderr
    assert [r["v"] for r in table_rows(tmp_path / "home", "acme.t").to_pylist()] == ["a"]


# -- connection errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("overrides", "expected"), [
    ({"port": "1"}, ["127.0.0.1:1", "connection refused", "MYSQL_PORT"]),
    ({"password": "s3cret-pw"}, ["127.0.0.1:3306", "access denied", "MYSQL_PASSWORD"]),
    ({"user": "nobody_here", "password": "s3cret-pw"}, ["'nobody_here'", "access denied", "MYSQL_USER"]),
    ({"database": "dativo_no_such_db"}, ["'dativo_no_such_db'", "does not exist", "MYSQL_DB"]),
])
def test_connection_errors_are_one_line_exit_2(tmp_path, overrides, expected):
    project = make_project(tmp_path / "project")
    _asset(project, "t", [("id", "long")])
    job = _job(project, "t", {"tables": [{"name": "t"}]}, connection=_it_connection(**overrides))
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in out.stderr and len(lines) <= 3, out.stderr
    message = lines[-1]
    for word in expected:
        assert word in message, message
    assert "cannot connect to MySQL" in message and "s3cret-pw" not in out.stderr + out.stdout


def test_missing_table_is_one_line(tmp_path):
    project = make_project(tmp_path / "project")
    _asset(project, "t", [("id", "long")])
    job = _job(project, "t", {"tables": [{"name": "dativo_mysql_it.no_such_table"}]}, connection=_it_connection())
    sql(f"CREATE DATABASE IF NOT EXISTS {IT_DB}", database=None)
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and "no_such_table" in out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr


def test_recipe_uses_the_seed_guide_variables():
    from tests.acceptance.helpers import REPO

    recipe = yaml.safe_load((REPO / "connectors/sources/mysql.yaml").read_text())
    template = recipe["connection_template"]
    assert template["host"] == "${MYSQL_HOST}" and template["database"] == "${MYSQL_DB}"
    assert template["port"] == "${MYSQL_PORT:-3306}" and template["user"] == "${MYSQL_USER}"
    assert template["password"].startswith("${MYSQL_PASSWORD")
