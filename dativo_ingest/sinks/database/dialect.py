"""What a database target needs from its database: connecting, quoting, column types, and a bulk load.

``DatabaseSink`` (``sink.py``) writes the same SQL shape to every database; a ``Dialect`` says how that SQL is
spelled and how rows get into a staging table fast (``postgres.py``: ADBC ingest, i.e. ``COPY … (FORMAT
binary)``; ``mysql.py``: ``LOAD DATA LOCAL INFILE``). Statements are written with ``PARAM`` where a value is
bound; ``execute`` turns it into the driver's placeholder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from dativo_ingest.errors import ConfigError

#: where a statement binds a value (NUL never appears in an identifier: ``check_name`` refuses it)
PARAM = "\x00"


class Dialect(ABC):
    """One database product as a target."""

    #: what messages call it
    product: str
    #: the longest identifier it keeps whole (PostgreSQL cuts longer ones silently)
    max_identifier: int

    def __init__(self, connection: dict[str, Any]) -> None:
        self.connection = connection

    # -- connection ------------------------------------------------------------------------------
    @abstractmethod
    def connect(self) -> Any:
        """A DB-API connection, not in autocommit, session in UTC; or a one-line ``InfrastructureError``."""

    @abstractmethod
    def describe(self) -> str:
        """Where the database is, as a URL without credentials (``postgresql://host:5432/db``)."""

    def execute(self, con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement (``PARAM`` binds each of ``params``); its rows when it returns any."""
        with con.cursor() as cur:
            if params:
                cur.execute(self.placeholders(sql), tuple(params))
            else:
                cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    @abstractmethod
    def placeholders(self, sql: str) -> str:
        """``sql`` with each ``PARAM`` replaced by the driver's placeholder."""

    @abstractmethod
    def is_conflict(self, exc: Exception) -> bool:
        """Whether a failed statement lost a race with another writer (duplicate key, deadlock, serialization)."""

    @abstractmethod
    def is_duplicate(self, exc: Exception) -> bool:
        """Whether a failed statement inserted a key that is already there."""

    @abstractmethod
    def is_missing_table(self, exc: Exception) -> bool:
        """Whether a failed statement named a table that does not exist."""

    # -- names -----------------------------------------------------------------------------------
    @abstractmethod
    def quote(self, name: str) -> str:
        """An identifier, quoted (inner quote characters doubled): never read as SQL."""

    def qualified(self, schema: str, table: str) -> str:
        """``"schema"."table"``."""
        return f"{self.quote(schema)}.{self.quote(table)}"

    # -- DDL -------------------------------------------------------------------------------------
    @abstractmethod
    def create_schema_sql(self, schema: str) -> str:
        """Create the schema (a database in MySQL) if it does not exist."""

    @abstractmethod
    def column_type(self, arrow: pa.DataType, *, json: bool = False, key: bool = False) -> str:
        """The column type that holds the asset's values of this Arrow type (``key``: part of the primary key)."""

    def stage_type(self, arrow: pa.DataType) -> str:
        """The column type of a staging table (what the bulk load writes as is)."""
        return self.column_type(arrow)

    @abstractmethod
    def create_stage_sql(self, qualified: str, columns: str, *, temporary: bool) -> str:
        """Create a staging table: temporary (dies with the session) or a real one (outlives the run)."""

    @abstractmethod
    def drop_sql(self, qualified: str, *, temporary: bool) -> str:
        """Drop a staging table."""

    def stage_name(self, schema: str, table: str, *, temporary: bool) -> str:
        """How a staging table is named in SQL (a temporary one may live outside the schema)."""
        return self.qualified(schema, table)

    def columns_sql(self) -> str:
        """(name, data_type, numeric precision, numeric scale, is_nullable) of each column of table ``PARAM`` in
        schema ``PARAM``, in order (``information_schema``: the same in both products)."""
        return (f"SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable FROM "
                f"information_schema.columns WHERE table_name = {PARAM} AND table_schema = {PARAM} "
                f"ORDER BY ordinal_position")

    def arrow_type(self, data_type: str, precision: Any, scale: Any) -> pa.DataType | None:
        """The Arrow type of a numeric column as ``information_schema`` describes it (None: not numeric, or a
        type no promotion involves), to compare with the asset's."""
        kind = data_type.lower()
        if kind in ("integer", "int"):
            return pa.int32()
        if kind == "bigint":
            return pa.int64()
        if kind in ("real", "float"):
            return pa.float32()
        if kind in ("double precision", "double"):
            return pa.float64()
        if kind in ("numeric", "decimal") and precision is not None:
            return pa.decimal128(int(precision), int(scale or 0))
        return None

    @abstractmethod
    def alter_type_sql(self, qualified: str, column: str, type_sql: str, *, not_null: bool) -> str:
        """Change a column's type to ``type_sql`` (a widening), keeping it ``NOT NULL`` when it was."""

    @abstractmethod
    def unique_keys_sql(self) -> str:
        """(index name, column) rows of the unique indexes of table ``PARAM`` in schema ``PARAM``."""

    # -- DML -------------------------------------------------------------------------------------
    @abstractmethod
    def load(self, con: Any, schema: str, table: str, data: pa.Table, *, temporary: bool) -> None:
        """Bulk-load ``data`` (columns named as the table's) into a staging table, in the open transaction."""

    def loads_into(self, con: Any, schema: str, table: str, arrow: pa.Schema) -> bool:
        """Whether ``load`` may write these columns straight into the existing table (the append fast path);
        True when the load is text the server converts to each column's type."""
        return True

    @abstractmethod
    def clear_sql(self, qualified: str) -> str:
        """Remove every row of a table inside a transaction (rolled back with it)."""

    @abstractmethod
    def upsert_sql(self, target: str, columns: list[str], select: str, key: list[str]) -> str:
        """``INSERT INTO target (columns) <select>``, replacing the rows whose ``key`` is already there."""

    @abstractmethod
    def delete_keys_sql(self, target: str, keys: str, key: list[str]) -> str:
        """Delete the rows of ``target`` whose ``key`` is in the table ``keys``."""

    def cast_json(self, expression: str) -> str:
        """A staged JSON text as the target's JSON column type takes it."""
        return expression

    @abstractmethod
    def stream(self, con: Any, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        """The rows of a query as record batches of ``schema``, streamed."""


def check_name(name: str, *, field: str, dialect: Dialect, job_path: Any, suffix: str = "") -> str:
    """A schema or table name that the database keeps as written, or a one-line ``ConfigError``.

    Every name is quoted in SQL, so quotes, dots and semicolons are just characters of it; what is refused is
    what the database would change: NUL and names longer than it keeps (with ``suffix``, e.g. the quarantine's)."""
    if not name or "\x00" in name:
        raise ConfigError(job_path, f"'{name}' is not a usable name", field=field, fix="use a non-empty name")
    size = len((name + suffix).encode())
    if size > dialect.max_identifier:
        raise ConfigError(job_path, f"'{name}{suffix}' is {size} bytes long; {dialect.product} keeps "
                          f"{dialect.max_identifier}", field=field, fix="use a shorter name")
    return name


__all__ = ["PARAM", "Dialect", "check_name"]
