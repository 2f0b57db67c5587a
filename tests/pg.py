"""The machine's PostgreSQL (127.0.0.1:5432, trust, user postgres, db test), for tests that need it."""

from __future__ import annotations

from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg")
URI = "postgresql://postgres@127.0.0.1:5432/test"


def reachable() -> bool:
    try:
        psycopg.connect(URI, connect_timeout=3).close()
        return True
    except Exception:
        return False


needs_postgres = pytest.mark.skipif(not reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432 "
                                                            "(start it with .ci/run)")


def sql(statement: str) -> Any:
    """Run one statement (autocommit); its rows when it returns any."""
    with psycopg.connect(URI, autocommit=True) as con:
        cur = con.execute(statement)
        return cur.fetchall() if cur.description else None
