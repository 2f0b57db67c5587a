"""PostgreSQL as a target: ADBC ingest (libpq ``COPY … FROM STDIN (FORMAT binary)``) into a staging table.

Measured, 1M rows × 6 columns on the local server (2 busy cores): ADBC ingest into a temporary table 0.54 s,
``INSERT … SELECT`` from it into the target 1.1 s, ``INSERT … ON CONFLICT DO UPDATE`` of the same rows 4.3 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from dativo_ingest.engines.native.sql.postgres import connect as pg_connect
from dativo_ingest.errors import InfrastructureError
from dativo_ingest.sinks.database.dialect import PARAM, Dialect
from dativo_ingest.sqltext import quote_ident

#: SQLSTATEs of a commit that lost a race: unique_violation, serialization_failure, deadlock_detected
CONFLICTS = {"23505", "40001", "40P01"}
UNDEFINED_TABLE = "42P01"
UNIQUE_VIOLATION = "23505"
#: how ``format_type`` spells the types ``pg_type`` names differently
FORMATTED = {"time": "time without time zone", "timestamp": "timestamp without time zone",
             "timestamptz": "timestamp with time zone"}


class Postgres(Dialect):
    """PostgreSQL (ADBC)."""

    product = "PostgreSQL"
    max_identifier = 63

    def connect(self) -> Any:
        try:
            con = pg_connect(self.connection)
        except InfrastructureError as exc:  # its text names the source's settings
            raise InfrastructureError(str(exc).replace("source.connection", "target.connection")) from None
        con.commit()  # the session's SET TIME ZONE stays after a rollback
        return con

    def describe(self) -> str:
        c = self.connection
        return (f"postgresql://{c.get('host') or '127.0.0.1'}:{c.get('port') or 5432}/"
                f"{c.get('database') or c.get('dbname') or ''}")

    def placeholders(self, sql: str) -> str:
        parts = sql.split(PARAM)
        return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))

    def is_conflict(self, exc: Exception) -> bool:
        return getattr(exc, "sqlstate", None) in CONFLICTS

    def is_duplicate(self, exc: Exception) -> bool:
        return getattr(exc, "sqlstate", None) == UNIQUE_VIOLATION

    def is_missing_table(self, exc: Exception) -> bool:
        return getattr(exc, "sqlstate", None) == UNDEFINED_TABLE

    def quote(self, name: str) -> str:
        return quote_ident(name)

    def create_schema_sql(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def column_type(self, arrow: pa.DataType, *, json: bool = False, key: bool = False) -> str:
        if json:
            return "jsonb"
        return pg_type(arrow)

    def create_stage_sql(self, qualified: str, columns: str, *, temporary: bool) -> str:
        # a real one is logged: it may hold quarantined rows that a data commit already names
        return f"CREATE {'TEMPORARY ' if temporary else ''}TABLE {qualified} ({columns})"

    def drop_sql(self, qualified: str, *, temporary: bool) -> str:
        return f"DROP TABLE IF EXISTS {qualified}"

    def stage_name(self, schema: str, table: str, *, temporary: bool) -> str:
        return self.quote(table) if temporary else self.qualified(schema, table)

    def alter_type_sql(self, qualified: str, column: str, type_sql: str, *, not_null: bool) -> str:
        return f"ALTER TABLE {qualified} ALTER COLUMN {self.quote(column)} TYPE {type_sql}"

    def unique_keys_sql(self) -> str:
        return (f"SELECT i.indexrelid::regclass::text, a.attname FROM pg_index i JOIN pg_attribute a ON "
                f"a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisunique AND i.indrelid = "
                f"to_regclass(quote_ident({PARAM}) || '.' || quote_ident({PARAM}))")

    def load(self, con: Any, schema: str, table: str, data: pa.Table, *, temporary: bool) -> None:
        with con.cursor() as cur:
            if temporary:
                cur.adbc_ingest(table, data, mode="append", temporary=True)
            else:
                cur.adbc_ingest(table, data, mode="append", db_schema_name=schema)

    def loads_into(self, con: Any, schema: str, table: str, arrow: pa.Schema) -> bool:
        """Binary COPY needs each column to be exactly the type ADBC writes (not jsonb, not a widened type)."""
        rows = self.execute(con, f"SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                                 f"WHERE a.attrelid = to_regclass({PARAM}) AND a.attnum > 0 AND NOT a.attisdropped",
                            [self.qualified(schema, table)])
        actual = {str(name): str(kind) for name, kind in rows}
        return all(actual.get(f.name) == FORMATTED.get(pg_type(f.type), pg_type(f.type)) for f in arrow)

    def clear_sql(self, qualified: str) -> str:
        return f"TRUNCATE TABLE {qualified}"  # transactional in PostgreSQL

    def upsert_sql(self, target: str, columns: list[str], select: str, key: list[str]) -> str:
        names = ", ".join(self.quote(c) for c in columns)
        rest = [c for c in columns if c not in key]
        action = ("DO UPDATE SET " + ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in rest)
                  if rest else "DO NOTHING")
        return f"INSERT INTO {target} ({names}) {select} ON CONFLICT ({', '.join(map(self.quote, key))}) {action}"

    def delete_keys_sql(self, target: str, keys: str, key: list[str]) -> str:
        match = " AND ".join(f"t.{self.quote(c)} = k.{self.quote(c)}" for c in key)
        return f"DELETE FROM {target} AS t USING {keys} AS k WHERE {match}"

    def cast_json(self, expression: str) -> str:
        return f"CAST({expression} AS jsonb)"

    def stream(self, con: Any, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        with con.cursor() as cur:
            cur.execute(sql)
            for batch in cur.fetch_record_batch():
                yield pa.RecordBatch.from_arrays([batch.column(i).cast(f.type) for i, f in enumerate(schema)],
                                                 schema=schema)
        con.rollback()


def pg_type(arrow: pa.DataType) -> str:
    """The PostgreSQL type that ADBC's binary COPY writes an Arrow type into unchanged."""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "text"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int8(arrow) or pa.types.is_int16(arrow):
        return "smallint"
    if pa.types.is_int32(arrow):
        return "integer"
    if pa.types.is_integer(arrow):
        return "bigint"
    if pa.types.is_float32(arrow):
        return "real"
    if pa.types.is_floating(arrow):
        return "double precision"
    if pa.types.is_decimal(arrow):
        return f"numeric({arrow.precision},{arrow.scale})"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_time(arrow):
        return "time"
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return "bytea"
    return "text"


__all__ = ["Postgres", "pg_type"]
