"""PostgreSQL and MySQL/MariaDB through Spark JDBC: partitioned reads, bounds from the source, cursor pushed down.

Each table (or ``source.query``) is read by ``num_partitions`` parallel queries split on ``partition_column``
(default: a one-column integer primary key), between the column's min and max over the rows this run reads
(one ``SELECT MIN, MAX … WHERE <cursor filter>`` first). The committed cursor (minus the lookback for a
temporal one) is a ``WHERE`` of the subquery every partition reads, so the database filters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dativo_ingest.engines.native.sql.common import (
    MYSQL,
    NUMBER,
    STANDARD,
    Quoting,
    SqlTable,
    base_select,
    utc_bound,
)
from dativo_ingest.engines.spark.options import JDBC_SOURCES, SparkInputs
from dativo_ingest.engines.spark.session import driver_class, parallelism
from dativo_ingest.errors import SourceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"postgresql": "5432", "mariadb": "3306"}
DEFAULT_USERS = {"postgresql": "postgres", "mariadb": "root"}
#: MySQL's type code of YEAR
YEAR = 13


@dataclass(frozen=True)
class JdbcRead:
    """One table's read: the DataFrame and how it was split."""

    stream: str
    origin: str
    frame: DataFrame
    partition_column: str | None
    partitions: int
    #: the cursor value this read ends at (the source's max over the rows read, as ISO text); None: no cursor or
    #: no new row
    cursor_value: str | None = None


def jdbc_url(connector: str, conn: dict[str, Any]) -> str:
    """The JDBC URL of a connection (no credentials in it: they go as properties)."""
    family = JDBC_SOURCES[connector]
    host = str(conn.get("host") or "127.0.0.1")
    port = str(conn.get("port") or DEFAULT_PORTS[family])
    database = quote(str(conn.get("database") or conn.get("dbname") or ""), safe="")
    if family == "postgresql":
        return f"jdbc:postgresql://{host}:{port}/{database}"
    # the MariaDB driver under a jdbc:mysql: URL: Spark then speaks its MySQL dialect (backtick quoting)
    return f"jdbc:mysql://{host}:{port}/{database}?permitMysqlScheme"


def quoting(connector: str) -> Quoting:
    """How the connector's database quotes names and literals."""
    return MYSQL if JDBC_SOURCES[connector] == "mariadb" else STANDARD


def _reader(spark: SparkSession, inp: SparkInputs) -> DataFrameReader:
    family = JDBC_SOURCES[inp.connector]
    conn = inp.connection
    reader = (spark.read.format("jdbc")
              .option("url", jdbc_url(inp.connector, conn))
              .option("driver", driver_class(inp.connector))
              .option("user", str(conn.get("user") or DEFAULT_USERS[family]))
              .option("fetchsize", str(inp.options.fetch_size))
              .option("preferTimestampNTZ", "true"))  # a zoneless column stays zoneless
    if conn.get("password"):
        reader = reader.option("password", str(conn["password"]))
    if family == "mariadb":
        reader = reader.option("sessionInitStatement", "SET time_zone = '+00:00'")
    return reader


def threshold_literal(after: str, kind: str, lookback_seconds: int, q: Quoting) -> str:
    """The committed cursor as a SQL literal of the cursor column's kind (``number``, ``temporal``, ``text``),
    minus the lookback for a temporal one; temporal values are UTC without an offset (both sessions are UTC)."""
    if kind == "number" and NUMBER.fullmatch(after):
        return after
    if kind == "temporal":
        value = utc_bound(after, lookback_seconds)
        return q.literal(after if value is None else value.isoformat(sep=" "))
    return q.literal(after)


def cursor_text(value: str, kind: str) -> str:
    """A cursor as the database printed it, kept in state as the native engine keeps it (ISO 8601 for
    dates and times: ``2024-01-01T10:00:00+00:00``; numbers and text as they are)."""
    if kind != "temporal":
        return value
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed.isoformat()


def select_list(inp: SparkInputs, table: SqlTable) -> str:
    """The columns every partition selects: MySQL's through the native engine's conversions (decimals, times and
    JSON as text, BIT as a number, geometry as WKT, zero dates as NULL), so both engines see the same values;
    PostgreSQL's as they are (Spark's types match the native reader's, see ``text_columns``)."""
    if JDBC_SOURCES[inp.connector] != "mariadb":
        return "q.*"
    from dativo_ingest.engines.native.sql import mysql

    con = mysql.connect(inp.connection)
    try:
        columns = mysql.describe(con, table)
    finally:
        con.close()
    def expr(column: mysql.Column) -> str:
        if column.type_code == YEAR:  # Spark's MySQL dialect would make a date of it
            return f"CAST(q.{MYSQL.ident(column.name)} AS UNSIGNED)"
        return mysql.column_expr(column)

    return ", ".join(f"{expr(c)} AS {MYSQL.ident(c.name)}" for c in columns)


def text_columns(connector: str, frame: DataFrame) -> list[str]:
    """Columns read as text: PostgreSQL ``numeric`` without a precision (Spark would force it into
    decimal(38,18) and fail on larger values; the native engine reads it as text too)."""
    from pyspark.sql import types as T

    if JDBC_SOURCES[connector] != "postgresql":
        return []
    return [f.name for f in frame.schema.fields
            if isinstance(f.dataType, T.DecimalType) and (f.dataType.precision, f.dataType.scale) == (38, 18)]


def _kind(spark_type: Any) -> str:
    from pyspark.sql import types as T

    if isinstance(spark_type, T.NumericType):
        return "number"
    if isinstance(spark_type, T.DateType | T.TimestampType | T.TimestampNTZType):
        return "temporal"
    return "text"


def _partition_column(inp: SparkInputs, frame: DataFrame, primary_key: list[str]) -> str | None:
    from pyspark.sql import types as T

    names = {f.name.lower(): f for f in frame.schema.fields}
    if inp.options.partition_column:
        f = names.get(inp.options.partition_column.lower())
        if f is None:
            raise SourceError(f"{inp.job_path}: engine.options.spark.partition_column: the source has no column "
                              f"'{inp.options.partition_column}' (columns: {', '.join(frame.columns)})")
        if not isinstance(f.dataType, T.NumericType | T.DateType | T.TimestampType):
            raise SourceError(f"{inp.job_path}: engine.options.spark.partition_column: '{f.name}' is "
                              f"{f.dataType.simpleString()}; Spark splits reads on a number, date or timestamp column")
        return f.name
    if len(primary_key) == 1:
        f = names.get(primary_key[0].lower())
        if f is not None and isinstance(f.dataType, T.IntegralType):
            return f.name
    return None


def read_table(spark: SparkSession, inp: SparkInputs, table: SqlTable, *, after: str | None,
               lookback_seconds: int, primary_key: list[str]) -> JdbcRead:
    """One table's rows this run reads, as a DataFrame split into parallel JDBC reads."""
    q = quoting(inp.connector)
    source = f"{base_select(table, q)} AS q"
    try:
        probe = _reader(spark, inp).option("query", f"SELECT * FROM {source} WHERE 1 = 0").load()
    except Exception as exc:  # the driver's error names the table or the query's mistake
        first = " ".join(str(exc).split(": ", 1)[-1].split())[:300]
        raise SourceError(f"{inp.connector}: cannot read {table.origin}: {first} "
                          f"(check source.tables[].name / source.query)") from None
    conditions: list[str] = []
    cursor_value: str | None = None
    if table.cursor_field:
        fields = {f.name.lower(): f for f in probe.schema.fields}
        cursor = fields.get(table.cursor_field.lower())
        if cursor is None:
            raise SourceError(f"{inp.connector}: {table.origin} has no column '{table.cursor_field}' (the "
                              f"cursor_field); columns: {', '.join(probe.columns)}")
        kind, column_sql = _kind(cursor.dataType), f"q.{q.ident(cursor.name)}"
        if after is not None:
            literal = threshold_literal(after, kind, lookback_seconds if kind == "temporal" else 0, q)
            conditions.append(f"{column_sql} > {literal}")
        # every parallel read ends at the same cursor value, taken once now: the reads agree, and the state is
        # the database's own maximum (its order, its text)
        text_type = "CHAR" if q is MYSQL else "TEXT"
        filtered = f" WHERE {conditions[0]}" if conditions else ""
        high = _reader(spark, inp).option(
            "query", f"SELECT CAST(MAX({column_sql}) AS {text_type}) AS hi FROM {source}{filtered}").load().first()
        if high is None or high["hi"] is None:
            conditions.append("1 = 0")  # nothing after the committed cursor
        else:
            conditions.append(f"{column_sql} <= {high['hi'] if kind == 'number' else q.literal(high['hi'])}")
            cursor_value = cursor_text(high["hi"], kind)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    subquery = f"(SELECT {select_list(inp, table)} FROM {source}{where}) s"
    partitions = inp.options.num_partitions or parallelism(spark)
    column = _partition_column(inp, probe, primary_key) if partitions > 1 else None
    reader = _reader(spark, inp).option("dbtable", subquery)
    as_text = text_columns(inp.connector, probe)
    if as_text:  # the stage casts them from text, as it casts the native engine's
        reader = reader.option("customSchema", ", ".join(f"`{c.replace('`', '``')}` STRING" for c in as_text))
    if column is not None:
        bounds = _reader(spark, inp).option(
            "query", f"SELECT MIN(s.{q.ident(column)}) AS lo, MAX(s.{q.ident(column)}) AS hi FROM {subquery}"
        ).load().first()
        if bounds is not None and bounds["lo"] is not None and bounds["lo"] != bounds["hi"]:
            reader = (reader.option("partitionColumn", column).option("lowerBound", str(bounds["lo"]))
                      .option("upperBound", str(bounds["hi"])).option("numPartitions", str(partitions)))
            log.info("spark jdbc: %s in %d partitions on %s [%s, %s]%s", table.origin, partitions, column,
                     bounds["lo"], bounds["hi"], where)
        else:
            column, partitions = None, 1
    else:
        partitions = 1
        log.info("spark jdbc: %s in one partition (set engine.options.spark.partition_column to split it)%s",
                 table.origin, where)
    return JdbcRead(table.stream, table.origin, reader.load(), column, partitions, cursor_value)


__all__ = ["JdbcRead", "cursor_text", "jdbc_url", "quoting", "read_table", "threshold_literal"]
