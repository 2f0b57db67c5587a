"""Load the Sakila sample (the original project's seed) into a MariaDB database, once.

``ensure_sakila()`` skips the load when the database already holds every table with the right row count;
a named lock keeps parallel test runs from loading it twice at the same time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SAKILA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "dativo-v1" / "seeds" / "test_db" \
    / "sakila"
DATABASE = "dativo_sakila"
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

#: rows per table once loaded (film_text is filled by the ins_film trigger)
ROW_COUNTS = {
    "actor": 200, "address": 603, "category": 16, "city": 600, "country": 109, "customer": 599, "film": 1000,
    "film_actor": 5462, "film_category": 1000, "film_text": 1000, "inventory": 4581, "language": 6,
    "payment": 16049, "rental": 16044, "staff": 2, "store": 2,
}

_SKIP = re.compile(r"^\s*(DROP SCHEMA IF EXISTS sakila|CREATE SCHEMA sakila|USE sakila)\s*;\s*$", re.I)
_DELIMITER = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.I)


def connect(database: str | None = None) -> Any:
    import pymysql

    return pymysql.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4", connect_timeout=5)


def statements(text: str) -> list[str]:
    """The statements of a mysql-client script (``DELIMITER`` switches honoured, our own schema name)."""
    out: list[str] = []
    delimiter, current = ";", []
    for line in text.splitlines():
        match = _DELIMITER.match(line)
        if match:
            delimiter = match.group(1)
            continue
        if not current and (not line.strip() or line.lstrip().startswith("--") or _SKIP.match(line)):
            continue
        current.append(line)
        if line.rstrip().endswith(delimiter):
            statement = "\n".join(current).rstrip()[: -len(delimiter)].strip()
            current = []
            if statement:
                out.append(re.sub(r"\bsakila\.", "", statement))
    return out


def loaded(cur: Any) -> bool:
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (DATABASE,))
    if cur.fetchone()[0] != len(ROW_COUNTS):
        return False
    union = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM `{DATABASE}`.`{t}`" for t in ROW_COUNTS)
    cur.execute(union)
    return dict(cur.fetchall()) == ROW_COUNTS


def ensure_sakila() -> str:
    """Load Sakila into ``dativo_sakila`` unless it is already there; returns the database name."""
    con = connect()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT GET_LOCK('dativo_sakila_load', 300)")
            try:
                if loaded(cur):
                    return DATABASE
                cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
                cur.execute(f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{DATABASE}`")
                cur.execute("SET time_zone = '+00:00'")  # TIMESTAMP values as written, in UTC
                for name in ("sakila-mv-schema.sql", "sakila-mv-data.sql"):
                    for statement in statements((SAKILA_DIR / name).read_text(encoding="utf-8")):
                        cur.execute(statement)
                if not loaded(cur):
                    raise RuntimeError(f"Sakila did not load as expected into {DATABASE}")
            finally:
                cur.execute("SELECT RELEASE_LOCK('dativo_sakila_load')")
    finally:
        con.close()
    return DATABASE
