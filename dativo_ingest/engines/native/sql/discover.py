"""What a database holds: tables, columns and primary keys, and a draft ODCS asset for one table.

The seed guide's "create asset definitions" step, done for the user: ``dativo_ingest discover``.
Each database is asked through its own catalog (``information_schema`` / ``PRAGMA table_info``); the
column types are mapped onto the asset types the stage understands (``stage/types.py``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dativo_ingest.engines.native.sources import SQL_DIALECTS
from dativo_ingest.errors import ConfigError, SourceError
from dativo_ingest.sqltext import quote_literal, quote_literal_mysql


@dataclass
class Column:
    """One column of a discovered table: its source type and the asset type it becomes."""

    name: str
    source_type: str
    asset_type: str
    required: bool


@dataclass
class TableInfo:
    #: ``schema.table`` (PostgreSQL, MySQL) or ``table`` (SQLite)
    """One discovered table: its columns and primary key."""

    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)

    @property
    def short_name(self) -> str:
        """The table's name without its schema."""
        return self.name.rsplit(".", 1)[-1]


# -- type mapping --------------------------------------------------------------------------------------
_PG = {
    "smallint": "integer", "integer": "integer", "bigint": "long", "real": "float", "double precision": "double",
    "boolean": "boolean", "date": "date", "time without time zone": "time", "time with time zone": "string",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz", "json": "json",
    "jsonb": "json", "uuid": "uuid", "bytea": "binary", "ARRAY": "json", "USER-DEFINED": "string",
    "text": "string", "character varying": "string", "character": "string", "interval": "string",
    "inet": "string", "cidr": "string", "money": "string", "oid": "long",
}


def pg_asset_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """The asset type of a PostgreSQL column type."""
    if data_type == "numeric":
        return f"decimal({precision},{scale or 0})" if precision else "decimal(38,9)"
    return _PG.get(data_type, "string")


_MYSQL_INTS = {"tinyint": "integer", "smallint": "integer", "mediumint": "integer", "int": "integer",
               "integer": "integer", "bigint": "long"}


def mysql_asset_type(data_type: str, column_type: str, precision: int | None, scale: int | None) -> str:
    """The asset type of a MySQL / MariaDB column type."""
    data_type, column_type = data_type.lower(), column_type.lower()
    if column_type.startswith("tinyint(1)") or data_type in ("bool", "boolean"):
        return "boolean"
    if data_type in _MYSQL_INTS:
        return "long" if data_type == "bigint" or "unsigned" in column_type and data_type == "int" else \
            _MYSQL_INTS[data_type]
    if data_type in ("decimal", "numeric"):
        return f"decimal({precision},{scale or 0})" if precision else "decimal(38,9)"
    simple = {"float": "float", "double": "double", "real": "double", "date": "date", "time": "time",
              "datetime": "timestamp", "timestamp": "timestamptz", "json": "json", "year": "integer",
              "bit": "long"}
    if data_type in simple:
        return simple[data_type]
    if data_type in ("blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"):
        return "binary"
    return "string"  # char, varchar, text, enum, set, ...


def sqlite_asset_type(declared: str) -> str:
    """SQLite's type affinity rules (https://sqlite.org/datatype3.html), plus the usual date/time names."""
    t = declared.upper()
    m = re.match(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", t)
    if m:
        return f"decimal({m.group(1)},{m.group(2)})"
    if "INT" in t:
        return "long"
    if "BOOL" in t:
        return "boolean"
    if "TIMESTAMP" in t or "DATETIME" in t:
        return "timestamp"
    if t.startswith("DATE"):
        return "date"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if "BLOB" in t:
        return "binary"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "double"
    return "string"


# -- catalog queries -------------------------------------------------------------------------------------
_PG_COLUMNS = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable,
       c.numeric_precision, c.numeric_scale
FROM information_schema.columns c
JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND t.table_type IN ('BASE TABLE', 'VIEW')
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""
_PG_KEYS = """
SELECT k.table_schema, k.table_name, k.column_name
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage k
  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
 AND k.table_name = tc.table_name
WHERE tc.constraint_type = 'PRIMARY KEY'
ORDER BY k.table_schema, k.table_name, k.ordinal_position
"""


def _rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = con.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        cur.close()


def _collect(columns: list[tuple[str, str, str, str, bool]], keys: list[tuple[str, str]]) -> list[TableInfo]:
    """(table, column, source type, asset type, required) rows + (table, key column) rows → tables."""
    tables: dict[str, TableInfo] = {}
    for table, name, source_type, asset_type, required in columns:
        tables.setdefault(table, TableInfo(table)).columns.append(Column(name, source_type, asset_type, required))
    for table, name in keys:
        if table in tables:
            tables[table].primary_key.append(name)
    return list(tables.values())


def discover_postgres(conn: dict[str, Any]) -> list[TableInfo]:
    """The tables and views of a PostgreSQL database."""
    from dativo_ingest.engines.native.sql.postgres import connect

    con = connect(conn)
    try:
        cols = [(f"{s}.{t}", c, dt, pg_asset_type(dt, p, sc), nullable == "NO")
                for s, t, c, dt, nullable, p, sc in _rows(con, _PG_COLUMNS)]
        keys = [(f"{s}.{t}", c) for s, t, c in _rows(con, _PG_KEYS)]
    finally:
        con.close()
    return _collect(cols, keys)


_MYSQL_COLUMNS = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.column_type, c.is_nullable,
       c.numeric_precision, c.numeric_scale, c.column_key
FROM information_schema.columns c
WHERE c.table_schema = {database}
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""


def discover_mysql(conn: dict[str, Any]) -> list[TableInfo]:
    """The tables and views of a MySQL / MariaDB database."""
    from dativo_ingest.engines.native.sql.mysql import connect

    con = connect(conn)
    try:
        database = str(conn.get("database") or conn.get("db") or "")
        rows = _rows(con, _MYSQL_COLUMNS.format(database=quote_literal_mysql(database)))
    finally:
        con.close()
    cols, keys = [], []
    for s, t, c, dt, ct, nullable, p, sc, key in rows:
        s, t, c, dt, ct = (x.decode() if isinstance(x, bytes) else str(x) for x in (s, t, c, dt, ct))
        cols.append((f"{s}.{t}", c, ct, mysql_asset_type(dt, ct, p, sc), nullable == "NO"))
        if key == "PRI":
            keys.append((f"{s}.{t}", c))
    return _collect(cols, keys)


def discover_sqlite(conn: dict[str, Any], project_root: Path) -> list[TableInfo]:
    """The tables and views of a SQLite file."""
    import adbc_driver_sqlite.dbapi as sq

    from dativo_ingest.engines.native.sql.sqlite import database_path

    con = sq.connect(str(database_path(conn, project_root)))
    try:
        names = [r[0] for r in _rows(con, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                                          "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        cols, keys = [], []
        for table in names:
            info = _rows(con, f'SELECT name, type, "notnull", pk FROM pragma_table_info({quote_literal(table)})')
            for name, declared, notnull, pk in info:
                cols.append((table, name, declared or "", sqlite_asset_type(declared or ""), bool(notnull) or pk > 0))
            keys += [(table, name) for name, _d, _n, pk in sorted(info, key=lambda r: r[3]) if pk > 0]
    finally:
        con.close()
    return _collect(cols, keys)


def discover(connector: str, conn: dict[str, Any], *, project_root: Path) -> list[TableInfo]:
    """The tables of the database of ``connector`` (postgres, mysql, sqlite)."""
    dialect = SQL_DIALECTS.get(connector)
    if dialect == "postgres":
        return discover_postgres(conn)
    if dialect == "mysql":
        return discover_mysql(conn)
    if dialect == "sqlite":
        return discover_sqlite(conn, project_root)
    raise NotImplementedError(f"discover supports postgres, mysql and sqlite; not '{connector}' "
                              f"(for Airbyte or Singer connectors use test-connector)")


def find_table(tables: list[TableInfo], wanted: str) -> TableInfo:
    """``schema.table`` exactly, or ``table`` when it is unique across schemas."""
    exact = [t for t in tables if t.name == wanted]
    if exact:
        return exact[0]
    by_short = [t for t in tables if t.short_name == wanted]
    if len(by_short) == 1:
        return by_short[0]
    if len(by_short) > 1:
        raise ConfigError(None, f"table '{wanted}' exists in several schemas: "
                          f"{', '.join(t.name for t in by_short)}", field="--table", fix="qualify it: schema.table")
    raise SourceError(f"table '{wanted}' not found (--table); {len(tables)} table(s) here, e.g. "
                      f"{', '.join(t.name for t in tables[:5]) or 'none'}")


def draft_asset(table: TableInfo, connector: str) -> dict[str, Any]:
    """A draft ODCS v3.0.2 asset for ``table``: review names, classifications and ownership before use."""
    return {
        "$schema": "schemas/odcs/dativo-odcs-3.0.2-extended.schema.json",
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": str(uuid.uuid4()),
        "name": table.short_name,
        "version": "1.0",
        "status": "draft",
        "description": {"purpose": f"{connector} table {table.name} (drafted by dativo_ingest discover)"},
        "source_type": connector,
        "object": table.short_name,
        "schema": [
            {"name": c.name, "type": c.asset_type, "required": c.required,
             **({"primary_key": True} if c.name in table.primary_key else {})}
            for c in table.columns
        ],
    }


def draft_contract(table: TableInfo, connector: str) -> dict[str, Any]:
    """The draft asset of ``table`` as a canonical ODCS v3 contract (``discover --emit-asset --odcs``)."""
    from dativo_ingest.config.models import AssetDefinition
    from dativo_ingest.config.odcs import to_canonical

    return to_canonical(AssetDefinition.model_validate(draft_asset(table, connector)))
