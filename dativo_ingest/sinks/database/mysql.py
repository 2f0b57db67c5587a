"""MySQL / MariaDB as a target: DuckDB writes the rows as CSV, ``LOAD DATA LOCAL INFILE`` loads them into a
staging table.

CSV as the server reads it: every value in double quotes (inner ones doubled), no escape character, and NULL
as the bare word ``NULL`` (a quoted "NULL" stays the text), so empty text, NULL, quotes, backslashes and line
breaks all survive. Timestamps go as UTC ``DATETIME(6)`` text, booleans as 0/1, binary as hex (``UNHEX`` on
load). In MySQL a schema is a database: ``target.schema`` names the database the tables go into.

Measured, 1M rows × 6 columns, local MariaDB 10.11 (2 busy cores): CSV 0.44 s, ``LOAD DATA`` into a temporary
table 1.7 s, ``INSERT … SELECT`` into the target 1.6 s (``ON DUPLICATE KEY UPDATE`` 2.8 s).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from dativo_ingest.engines.native.sql.mysql import connect as mysql_connect
from dativo_ingest.errors import InfrastructureError
from dativo_ingest.machine import duckdb_connection
from dativo_ingest.paths import scratch_dir
from dativo_ingest.sinks.database.dialect import PARAM, Dialect
from dativo_ingest.sqltext import quote_ident, quote_ident_mysql, quote_literal, quote_literal_mysql

#: duplicate key, deadlock, lock wait timeout
CONFLICTS = {1062, 1213, 1205}
NO_SUCH_TABLE = 1146
DUPLICATE_KEY = 1062
#: rows fetched per round trip when streaming keys
FETCH_ROWS = 65_536


class Mysql(Dialect):
    """MySQL / MariaDB (PyMySQL for statements, ``LOAD DATA LOCAL INFILE`` for rows)."""

    product = "MySQL"
    max_identifier = 64

    def connect(self) -> Any:
        try:
            con = mysql_connect(self.connection, local_infile=True)
        except InfrastructureError as exc:  # its text names the source's settings
            raise InfrastructureError(str(exc).replace("source.connection", "target.connection")) from None
        with con.cursor() as cur:  # each statement sees what others committed (a head read after a rival's commit)
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return con

    def describe(self) -> str:
        c = self.connection
        return f"mysql://{c.get('host') or '127.0.0.1'}:{c.get('port') or 3306}"

    def placeholders(self, sql: str) -> str:
        return sql.replace("%", "%%").replace(PARAM, "%s")

    def is_conflict(self, exc: Exception) -> bool:
        return _code(exc) in CONFLICTS

    def is_duplicate(self, exc: Exception) -> bool:
        return _code(exc) == DUPLICATE_KEY

    def is_missing_table(self, exc: Exception) -> bool:
        return _code(exc) == NO_SUCH_TABLE

    def quote(self, name: str) -> str:
        return quote_ident_mysql(name)

    def create_schema_sql(self, schema: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {self.quote(schema)} CHARACTER SET utf8mb4"

    def column_type(self, arrow: pa.DataType, *, json: bool = False, key: bool = False) -> str:
        if json:
            return "JSON"
        if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
            return "VARCHAR(255)" if key else "LONGTEXT"
        if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
            return "VARBINARY(255)" if key else "LONGBLOB"
        if pa.types.is_boolean(arrow):
            return "BOOLEAN"
        if pa.types.is_int8(arrow) or pa.types.is_int16(arrow):
            return "SMALLINT"
        if pa.types.is_int32(arrow):
            return "INT"
        if pa.types.is_integer(arrow):
            return "BIGINT"
        if pa.types.is_float32(arrow):
            return "FLOAT"
        if pa.types.is_floating(arrow):
            return "DOUBLE"
        if pa.types.is_decimal(arrow):
            return f"DECIMAL({arrow.precision},{min(arrow.scale, 30)})"
        if pa.types.is_date(arrow):
            return "DATE"
        if pa.types.is_time(arrow):
            return "TIME(6)"
        if pa.types.is_timestamp(arrow):
            return "DATETIME(6)"  # UTC (the session's time zone); TIMESTAMP would stop at 2038
        return "LONGTEXT"

    def create_stage_sql(self, qualified: str, columns: str, *, temporary: bool) -> str:
        return f"CREATE {'TEMPORARY ' if temporary else ''}TABLE {qualified} ({columns}) ENGINE=InnoDB"

    def drop_sql(self, qualified: str, *, temporary: bool) -> str:
        return f"DROP {'TEMPORARY ' if temporary else ''}TABLE IF EXISTS {qualified}"

    def alter_type_sql(self, qualified: str, column: str, type_sql: str, *, not_null: bool) -> str:
        return f"ALTER TABLE {qualified} MODIFY COLUMN {self.quote(column)} {type_sql}{' NOT NULL' if not_null else ''}"

    def unique_keys_sql(self) -> str:
        return (f"SELECT index_name, column_name FROM information_schema.statistics WHERE non_unique = 0 AND "
                f"table_schema = {PARAM} AND table_name = {PARAM}")

    def load(self, con: Any, schema: str, table: str, data: pa.Table, *, temporary: bool) -> None:
        exprs, targets, sets = [], [], []
        for i, field in enumerate(data.schema):
            col = quote_ident(field.name)  # DuckDB's quoting
            name = self.quote(field.name)
            t = field.type
            if pa.types.is_timestamp(t):
                value = f"{col} AT TIME ZONE 'UTC'" if t.tz else col
                exprs.append(f"strftime({value}, '%Y-%m-%d %H:%M:%S.%f')")
            elif pa.types.is_boolean(t):
                exprs.append(f"CAST({col} AS INTEGER)")
            elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
                exprs.append(f"hex({col})")
                targets.append(f"@v{i}")
                sets.append(f"{name} = UNHEX(@v{i})")
                continue
            else:
                exprs.append(col)
            targets.append(name)
        fd, path = tempfile.mkstemp(prefix="dativo-load-", suffix=".csv", dir=scratch_dir())
        os.close(fd)
        try:
            duck = duckdb_connection()
            try:
                duck.register("batch", data)
                duck.execute(f"COPY (SELECT {', '.join(exprs)} FROM batch) TO {quote_literal(path)} "
                             "(FORMAT csv, HEADER false, NULLSTR 'NULL', FORCE_QUOTE *, QUOTE '\"', ESCAPE '\"')")
            finally:
                duck.close()
            sql = (f"LOAD DATA LOCAL INFILE {quote_literal_mysql(path)} INTO TABLE "
                   f"{self.stage_name(schema, table, temporary=temporary)} CHARACTER SET utf8mb4 "
                   f"FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
                   f"({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else ""))
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            os.unlink(path)

    def clear_sql(self, qualified: str) -> str:
        return f"DELETE FROM {qualified}"  # TRUNCATE would commit the transaction

    def upsert_sql(self, target: str, columns: list[str], select: str, key: list[str]) -> str:
        names = ", ".join(self.quote(c) for c in columns)
        rest = [c for c in columns if c not in key] or key[:1]
        updates = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in rest)
        return f"INSERT INTO {target} ({names}) {select} ON DUPLICATE KEY UPDATE {updates}"

    def delete_keys_sql(self, target: str, keys: str, key: list[str]) -> str:
        columns = ", ".join(self.quote(c) for c in key)  # a multi-table DELETE resolves aliases in the default db
        return f"DELETE FROM {target} WHERE ({columns}) IN (SELECT {columns} FROM {keys})"

    def stream(self, con: Any, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        import pymysql.cursors

        with con.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql)
            while rows := cur.fetchmany(FETCH_ROWS):
                columns = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)],
                                                 schema=schema)
        con.rollback()


def _code(exc: Exception) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


__all__ = ["Mysql"]
