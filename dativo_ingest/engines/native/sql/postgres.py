"""Native PostgreSQL source: ADBC (libpq COPY binary under the hood) straight into Arrow record batches.

Measured on 1M rows × 10 columns (local server, 2 cores): ADBC ``fetch_record_batch`` 0.93–1.0 s into
Arrow; psycopg 3 ``COPY … TO STDOUT (FORMAT binary)`` needs 0.82 s only to move the bytes, before any
decoding in Python — so ADBC. Batches stream (bounded memory). Types the stage could not cast
(numeric, json/jsonb, uuid, intervals, enums of unknown kinds) are turned into text in SQL, arrays into
JSON text; the cursor filter and ORDER BY are pushed down to the server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from dativo_ingest.engines.native.sql.common import (
    NUMBER,
    Endpoint,
    SqlTable,
    base_select,
    build_select,
    driver_text,
    with_commit_points,
)
from dativo_ingest.errors import InfrastructureError, SourceError
from dativo_ingest.sqltext import quote_ident, quote_literal
from dativo_ingest.stream import Message

log = logging.getLogger(__name__)

TEMPORAL = {"timestamp", "timestamptz", "date"}
NUMERIC = {"int2", "int4", "int8", "numeric", "float4", "float8", "oid"}
CONNECT_TIMEOUT_S = 10


def _endpoint(conn: dict[str, Any]) -> Endpoint:
    return Endpoint.of(conn, default_port="5432", default_user="postgres")


def connection_uri(conn: dict[str, Any]) -> str:
    """The PostgreSQL URI of a connection (a short connect timeout)."""
    return _endpoint(conn).url("postgresql", str(conn.get("password") or ""), f"connect_timeout={CONNECT_TIMEOUT_S}")


def _connect_error(conn: dict[str, Any], exc: Exception) -> InfrastructureError:
    text = driver_text(str(exc), str(conn.get("password") or ""))
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        reason, fix = "authentication failed", "check POSTGRES_USER / POSTGRES_PASSWORD in the tenant's secrets"
    elif "role" in low and "does not exist" in low:
        reason, fix = "the user does not exist", "fix POSTGRES_USER / source.connection.user"
    elif "does not exist" in low and "database" in low:
        reason, fix = "the database does not exist", "create it, or fix POSTGRES_DB / source.connection.database"
    elif "refused" in low or "could not connect" in low or "timeout" in low or "timed out" in low:
        reason = "connection refused or unreachable"
        fix = "is the server running? check POSTGRES_HOST / POSTGRES_PORT or source.connection.host/port"
    else:
        reason, fix = (text[:200] or type(exc).__name__), "check source.connection and the tenant's secrets"
    return _endpoint(conn).error("PostgreSQL", reason, fix)


def connect(conn: dict[str, Any]) -> Any:
    """An ADBC connection with the session in UTC, or a one-line ``InfrastructureError``."""
    import adbc_driver_postgresql.dbapi as pg

    try:
        con = pg.connect(connection_uri(conn))
        with con.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        return con
    except Exception as exc:  # the driver's errors carry libpq's text; we keep one line of it
        raise _connect_error(conn, exc) from None


def _pg_type(field: pa.Field) -> str:
    meta = field.metadata or {}
    return (meta.get(b"POSTGRESQL:type") or meta.get(b"ADBC:postgresql:typname") or b"").decode()


def column_expr(field: pa.Field) -> str:
    """SQL over ``q`` giving the column in a type the stage can cast."""
    col = f"q.{quote_ident(field.name)}"
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t) or _pg_type(field).startswith("_"):
        return f"to_json({col})::text"
    if isinstance(t, pa.ExtensionType) or pa.types.is_interval(t) or pa.types.is_null(t):
        return f"{col}::text"
    return col


def _threshold(pg_type: str, lookback_seconds: int) -> Any:
    def condition(cursor: str, after: str) -> str:
        if pg_type in TEMPORAL:
            value = f"CAST({quote_literal(after)} AS {pg_type})"
            if lookback_seconds:
                value = f"({value} - INTERVAL '{int(lookback_seconds)} seconds')"
            return f"{cursor} > {value}"
        if pg_type in NUMERIC and NUMBER.fullmatch(after):
            return f"{cursor} > {after}"
        return f"{cursor}::text > {quote_literal(after)}"
    return condition


def read_postgres(
    tables: list[SqlTable],
    conn: dict[str, Any],
    *,
    cursors: dict[str, str | None],
    lookback_seconds: int = 0,
) -> Iterator[Message]:
    """Yield each table's rows as Arrow batches (cursor-filtered, ordered) and a checkpoint after each."""
    con = connect(conn)
    try:
        for table in tables:
            with con.cursor() as cur:
                try:
                    schema = cur.adbc_execute_schema(f"SELECT * FROM {base_select(table)} AS q")
                except Exception as exc:
                    raise SourceError(f"PostgreSQL: cannot read {table.origin}: {' '.join(str(exc).split())[:300]} "
                                      f"(check source.tables[].name / source.query)") from None
                columns = [(f.name, column_expr(f)) for f in schema]
                if table.cursor_field and table.cursor_field not in schema.names:
                    raise SourceError(f"PostgreSQL: {table.origin} has no column '{table.cursor_field}' "
                                      f"(the cursor_field); columns: {', '.join(schema.names)}")
                cursor_type = _pg_type(schema.field(table.cursor_field)) if table.cursor_field else ""
                sql = build_select(table, columns, after=cursors.get(table.stream),
                                   threshold=_threshold(cursor_type, lookback_seconds))
                log.info("postgres: %s", sql)
                cur.execute(sql)
                reader = cur.fetch_record_batch()
                yield from with_commit_points(table, (b for b in reader if b.num_rows))
    finally:
        con.close()
