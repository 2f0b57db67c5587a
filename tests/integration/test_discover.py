# ruff: noqa: F811  (pytest fixtures imported by name and used as parameters)
"""``dativo_ingest discover`` and the source connection check of ``startup_sequence()``, on the real servers."""

from __future__ import annotations

import json
import sqlite3

import yaml

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml
from tests.integration.test_postgres_source import URI, psycopg, pytestmark, schema, sql  # noqa: F401

PG_SECRETS = "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=5432\nPOSTGRES_DB=test\nPOSTGRES_USER=postgres\n"


def _pg_project(tmp_path, secrets: str = PG_SECRETS):
    project = make_project(tmp_path / "project")
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "db.env").write_text(secrets)
    return project


def test_discover_lists_tables_and_emits_an_asset_the_project_runs_unchanged(tmp_path, schema):
    sql(f"""CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2),
            paid boolean, placed timestamptz NOT NULL, day date, meta jsonb, ref uuid, tags text[])""")
    sql(f"""INSERT INTO {schema}.orders VALUES
        (1, 'ann', 12.50, true, '2024-03-01 10:00:00+02', '2024-03-01', '{{"a": 1}}',
         '6f1c2d7e-0c1a-4f5e-9a51-5d2f0e6c1a01', '{{x,y}}'),
        (2, 'bob', NULL, NULL, '2024-03-02 00:00:00Z', NULL, NULL, NULL, NULL)""")
    project, home = _pg_project(tmp_path), tmp_path / "home"

    listed = cli("discover", "--connector", "postgres", "--tenant-id", "acme", "--json", cwd=project, home=home)
    assert listed.returncode == 0, listed.stderr
    tables = {t["table"]: t for t in json.loads(listed.stdout)}
    mine = tables[f"{schema}.orders"]
    assert mine["primary_key"] == ["id"]
    types = {c["name"]: c["asset_type"] for c in mine["columns"]}
    assert types == {"id": "long", "customer": "string", "amount": "decimal(10,2)", "paid": "boolean",
                     "placed": "timestamptz", "day": "date", "meta": "json", "ref": "uuid", "tags": "json"}

    text = cli("discover", "--connector", "postgres", "--tenant-id", "acme", "--table", f"{schema}.orders",
               cwd=project, home=home)
    assert text.returncode == 0 and "primary key: id" in text.stdout and "decimal(10,2)" in text.stdout

    out = cli("discover", "--connector", "postgres", "--tenant-id", "acme", "--table", f"{schema}.orders",
              "--emit-asset", "-o", "assets/postgres/v1.0/orders.yaml", cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    asset = yaml.safe_load((project / "assets/postgres/v1.0/orders.yaml").read_text())
    assert asset["name"] == "orders" and asset["source_type"] == "postgres"
    required = {f["name"] for f in asset["schema"] if f["required"]}
    assert required == {"id", "customer", "placed"}
    assert [f["name"] for f in asset["schema"] if f.get("primary_key")] == ["id"]

    # the draft runs unchanged, through the recipe's connection and the tenant's secrets
    job = write_yaml(project / "jobs/acme/orders.yaml", {
        "tenant_id": "acme", "source_connector": "postgres", "target_connector": "iceberg", "engine": "native",
        "asset": "orders", "asset_path": "assets/postgres/v1.0/orders.yaml",
        "source": {"tables": [{"name": f"{schema}.orders", "object": "orders"}]}})
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    rows = sorted(table_rows(home, "acme.orders").to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["customer"], str(r["amount"]), r["placed"].isoformat()) for r in rows] == [
        (1, "ann", "12.50", "2024-03-01T08:00:00+00:00"), (2, "bob", "None", "2024-03-02T00:00:00+00:00")]
    assert rows[0]["tags"] == '["x","y"]' and json.loads(rows[0]["meta"]) == {"a": 1}


def test_discover_names_an_unknown_table_and_a_bad_connector(tmp_path, schema):
    project, home = _pg_project(tmp_path), tmp_path / "home"
    out = cli("discover", "--connector", "postgres", "--tenant-id", "acme", "--table", f"{schema}.nope",
              cwd=project, home=home)
    assert out.returncode == 2 and f"table '{schema}.nope' not found" in out.stderr
    out = cli("discover", "--connector", "oracle", "--tenant-id", "acme", cwd=project, home=home)
    assert out.returncode == 2 and "unknown source connector 'oracle'" in out.stderr and "postgres" in out.stderr


def test_discover_sqlite_maps_declared_types(tmp_path):
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    db = project / "data" / "shop.db"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DECIMAL(8,2), "
                    "added DATETIME, raw BLOB)")
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "db.env").write_text(f"SQLITE_DATABASE_PATH={db}\n")
    out = cli("discover", "--connector", "sqlite", "--tenant-id", "acme", "--table", "items", "--emit-asset",
              cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    fields = {f["name"]: (f["type"], f["required"], f.get("primary_key", False))
              for f in yaml.safe_load(out.stdout)["schema"]}
    assert fields == {"id": ("long", True, True), "name": ("string", True, False),
                      "price": ("decimal(8,2)", False, False), "added": ("timestamp", False, False),
                      "raw": ("binary", False, False)}


def test_startup_checks_the_database_before_reading(tmp_path):
    project = _pg_project(tmp_path, PG_SECRETS.replace("POSTGRES_DB=test", "POSTGRES_DB=no_such_db_here") +
                          "POSTGRES_PASSWORD=hunter2-secret\n")
    write_yaml(project / "assets/postgres/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "postgres",
        "schema": [{"name": "id", "type": "long"}]})
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "postgres", "target_connector": "iceberg", "engine": "native",
        "asset": "t", "asset_path": "assets/postgres/v1.0/t.yaml", "source": {"tables": [{"name": "public.t"}]}})
    home = tmp_path / "home"
    out = cli("check", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "t.yaml: source.connection: cannot connect to PostgreSQL at 127.0.0.1:5432" in line
    assert "no_such_db_here" in line and "POSTGRES_DB" in line and "hunter2-secret" not in out.stderr + out.stdout
    assert not (home / "catalog.db").exists()  # nothing written


def test_discover_mysql_sakila_film_and_run_the_draft(tmp_path):
    from tests.integration.sakila import ensure_sakila
    from tests.integration.test_mysql_source import _reachable as mysql_reachable

    if not mysql_reachable():
        import pytest

        pytest.skip("MariaDB is not reachable on 127.0.0.1:3306")
    database = ensure_sakila()
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "db.env").write_text(
        f"MYSQL_HOST=127.0.0.1\nMYSQL_PORT=3306\nMYSQL_DB={database}\nMYSQL_USER=root\n")
    out = cli("discover", "--connector", "mysql", "--tenant-id", "acme", "--table", "film", "--emit-asset",
              "-o", "assets/mysql/v1.0/film.yaml", cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    fields = {f["name"]: f for f in yaml.safe_load((project / "assets/mysql/v1.0/film.yaml").read_text())["schema"]}
    assert fields["film_id"]["primary_key"] and fields["film_id"]["required"]
    assert fields["rental_rate"]["type"] == "decimal(4,2)" and fields["rating"]["type"] == "string"
    assert fields["last_update"]["type"] == "timestamptz" and fields["description"]["required"] is False
    job = write_yaml(project / "jobs/acme/film.yaml", {
        "tenant_id": "acme", "source_connector": "mysql", "target_connector": "iceberg", "engine": "native",
        "asset": "film", "asset_path": "assets/mysql/v1.0/film.yaml",
        "source": {"tables": [{"name": f"{database}.film", "object": "film"}]}})
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    assert table_rows(home, "acme.film").num_rows == 1000
