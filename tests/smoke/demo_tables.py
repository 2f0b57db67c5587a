"""The demo tables the example jobs read, created idempotently from ``data/sql/postgres.sql`` / ``mariadb.sql``.

Connections follow the jobs' own variables and defaults (``POSTGRES_HOST:-127.0.0.1`` …, ``MYSQL_HOST`` …), so the
tables land where the jobs look. Both drivers are dependencies of dativo-ingest itself (ADBC, PyMySQL).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "data" / "sql"


def statements(text: str) -> list[str]:
    """The statements of a plain SQL file: ``--`` comment lines dropped, one statement per ``;`` at a line end."""
    out, current = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("--") or not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current).rstrip().removesuffix(";"))
            current = []
    if current:
        out.append("\n".join(current))
    return out


def _var(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name) or default


def postgres_uri(env: Mapping[str, str] = os.environ) -> str:
    """The jobs' PostgreSQL: ``POSTGRES_HOST/PORT/DB/USER/PASSWORD``, default 127.0.0.1:5432 postgres@test."""
    user = quote(_var(env, "POSTGRES_USER", "postgres"), safe="")
    password = env.get("POSTGRES_PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    return (f"postgresql://{auth}@{_var(env, 'POSTGRES_HOST', '127.0.0.1')}:{_var(env, 'POSTGRES_PORT', '5432')}"
            f"/{_var(env, 'POSTGRES_DB', 'test')}")


def create_postgres_tables(env: Mapping[str, str] = os.environ) -> str:
    """Run ``data/sql/postgres.sql``; returns what was done, for the report line."""
    import adbc_driver_postgresql.dbapi as pg

    sql = statements((SQL_DIR / "postgres.sql").read_text())
    with pg.connect(postgres_uri(env), autocommit=True) as con, con.cursor() as cur:
        for statement in sql:
            cur.execute(statement)
    return f"PostgreSQL: {len(sql)} statements of data/sql/postgres.sql"


def create_mariadb_tables(env: Mapping[str, str] = os.environ) -> str:
    """Run ``data/sql/mariadb.sql``; returns what was done, for the report line."""
    import pymysql

    sql = statements((SQL_DIR / "mariadb.sql").read_text())
    con = pymysql.connect(host=_var(env, "MYSQL_HOST", "127.0.0.1"), port=int(_var(env, "MYSQL_PORT", "3306")),
                          user=_var(env, "MYSQL_USER", "root"), password=env.get("MYSQL_PASSWORD") or "",
                          database=_var(env, "MYSQL_DB", "test"), autocommit=True, connect_timeout=5)
    try:
        with con.cursor() as cur:
            for statement in sql:
                cur.execute(statement)
    finally:
        con.close()
    return f"MariaDB: {len(sql)} statements of data/sql/mariadb.sql"


#: every creator, run in this order; each is independent (one server down fails only its jobs)
CREATORS = (create_postgres_tables, create_mariadb_tables)
