"""What the SQL sources share: which tables to read, and the SELECT with a pushed-down cursor filter."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.config.models import SourceTable
from dativo_ingest.config.read_policy import ReadPolicy
from dativo_ingest.errors import ConfigError, InfrastructureError
from dativo_ingest.sqltext import quote_ident, quote_ident_mysql, quote_literal, quote_literal_mysql
from dativo_ingest.state.cursor import cursor_to_text
from dativo_ingest.stream import Batch, Checkpoint, Message

#: a cursor value that is a plain number (compared as a number, not as text)
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Endpoint:
    """Where a database is and who connects: what a connection error names (never the password)."""

    host: str
    port: str
    user: str
    database: str

    @classmethod
    def of(cls, conn: dict[str, Any], *, default_port: str, default_user: str) -> Endpoint:
        """The endpoint of a connection mapping (defaults for host, port and user)."""
        return cls(str(conn.get("host") or "127.0.0.1"), str(conn.get("port") or default_port),
                   str(conn.get("user") or default_user), str(conn.get("database") or conn.get("dbname") or ""))

    def url(self, scheme: str, password: str, query: str) -> str:
        """A connection URL with the user and password quoted."""
        auth = quote(self.user, safe="") + (":" + quote(password, safe="") if password else "")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}?{query}"

    def error(self, product: str, reason: str, fix: str) -> InfrastructureError:
        """A one-line connection error naming host:port, user and database, and the fix."""
        return InfrastructureError(f"cannot connect to {product} at {self.host}:{self.port} as user '{self.user}', "
                                   f"database '{self.database}': {reason} ({fix})")


def driver_text(text: str, password: str) -> str:
    """A driver's error message on one line, the password (if it echoes it) masked."""
    text = " ".join(text.split())
    return text.replace(password, "***") if password else text


@dataclass(frozen=True)
class Quoting:
    """How a database quotes identifiers and string literals."""

    ident: Callable[[str], str]
    literal: Callable[[str], str]
    #: the identifier quote character (a name holding it is taken as already quoted)
    mark: str


STANDARD = Quoting(quote_ident, quote_literal, '"')
MYSQL = Quoting(quote_ident_mysql, quote_literal_mysql, "`")


@dataclass(frozen=True)
class SqlTable:
    """One thing to read: a (schema-qualified) table or a custom query, landing in ``stream``."""

    stream: str
    #: ``schema.table`` or ``table``; None for a custom query
    name: str | None
    query: str | None = None
    cursor_field: str | None = None

    @property
    def origin(self) -> str:
        """The table's name (or ``query``), for messages."""
        return self.name or "query"


def quote_qualified(name: str, quoting: Quoting = STANDARD) -> str:
    """``schema.table`` → ``"schema"."table"``; an already quoted name is kept as written."""
    if quoting.mark in name:
        return name
    return ".".join(quoting.ident(part) for part in name.split("."))


def utc_bound(after: str, lookback_seconds: int = 0) -> datetime | None:
    """A committed date-time cursor (ISO 8601, maybe with an offset or ``Z``) as a zoneless UTC date-time less the
    lookback, for a SQL literal (the sessions run in UTC); None when ``after`` is not a date-time."""
    text = after[:-1] + "+00:00" if after[-1:] in ("Z", "z") else after
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value - timedelta(seconds=lookback_seconds)


def resolve_tables(tables: Sequence[SourceTable], query: str | None, *, default_stream: str,
                   read: ReadPolicy) -> list[SqlTable]:
    """``source.tables[{name, object}]`` or ``source.query`` (→ the asset's stream), each with the cursor the job's
    read policy gives its stream."""
    if query:
        return [SqlTable(default_stream, None, query.strip().rstrip(";"), read.cursor_for(default_stream))]
    if not tables:
        raise ConfigError(None, "no table to read", field="source.tables",
                          fix="add source.tables: [{name: public.orders, object: orders}] or source.query")
    out = []
    for table in tables:
        stream = str(table.object or table.name)
        out.append(SqlTable(stream, table.name, None, read.cursor_for(stream)))
    return out


def base_select(table: SqlTable, quoting: Quoting = STANDARD) -> str:
    """The table (quoted) or the query (in parentheses) to select from."""
    return f"({table.query})" if table.query else quote_qualified(table.name or "", quoting)


def build_select(
    table: SqlTable,
    columns: Sequence[tuple[str, str]],
    *,
    after: str | None,
    threshold: Callable[[str, str], str] | None = None,
    quoting: Quoting = STANDARD,
) -> str:
    """``SELECT <exprs> FROM <table or (query)> AS q [WHERE cursor > threshold ORDER BY cursor]``.

    ``columns`` are (name, expression over ``q``) pairs (the expression converts types the driver cannot
    carry); ``threshold(cursor, after)`` is the SQL condition on the cursor (after minus the lookback).
    """
    exprs = ", ".join(f"{expr} AS {quoting.ident(name)}" for name, expr in columns) or "*"
    sql = f"SELECT {exprs} FROM {base_select(table, quoting)} AS q"
    if table.cursor_field:
        cursor = f"q.{quoting.ident(table.cursor_field)}"
        if after is not None:
            sql += f" WHERE {threshold(cursor, after) if threshold else f'{cursor} > {quoting.literal(after)}'}"
        sql += f" ORDER BY {cursor}"
    return sql


#: a cursor-ordered read offers a commit point about every this many rows (slices are zero-copy)
CHECKPOINT_ROWS = 65_536


def with_commit_points(table: SqlTable, batches: Iterable[pa.RecordBatch], *,
                       every_rows: int = CHECKPOINT_ROWS) -> Iterator[Message]:
    """The batches of one table's read, ordered by its cursor when it has one, then a ``Checkpoint``.

    The database filtered the rows by the committed cursor and ordered them, in its own order (a text cursor's
    collation): the batches say so (``cursor_applied``), and each checkpoint carries the cursor of the last row
    read — the greatest in that order — so nothing filters or compares the values again in another order. A
    long read is cut into slices of about ``every_rows`` with a checkpoint between two slices, each cut where
    the cursor value changes, so a commit there loses none of the rows sharing that value."""
    field = table.cursor_field
    last: Any = None

    def checkpoint() -> Checkpoint:
        return Checkpoint(table.stream, {"cursor": {"field": field, "value": cursor_to_text(last)}}
                          if field and last is not None else {})

    for batch in batches:
        if not field or not _orderable(batch.schema.field(field).type):
            yield Batch(table.stream, batch, origin=table.origin, cursor_applied=bool(field))
            if field:
                last = batch.column(field)[-1].as_py() if batch.num_rows else last
            continue
        column = batch.column(field)
        if last is not None and column[0].as_py() != last:
            yield checkpoint()
        start = 0
        while batch.num_rows - start > every_rows:
            cut = _next_change(column, start + every_rows)
            if cut is None:
                break
            yield Batch(table.stream, batch.slice(start, cut - start), origin=table.origin, cursor_applied=True)
            last = column[cut - 1].as_py()
            yield checkpoint()
            start = cut
        yield Batch(table.stream, batch.slice(start), origin=table.origin, cursor_applied=True)
        last = column[-1].as_py()
    yield checkpoint()


def _next_change(column: pa.Array, at: int) -> int | None:
    """The first index >= ``at`` whose value differs from the one before it (the column is sorted)."""
    changed = pc.not_equal(column.slice(at), column.slice(at - 1, len(column) - at))
    index = pc.index(changed, True).as_py()
    return None if index < 0 else at + index


def _orderable(t: pa.DataType) -> bool:
    """Types whose values compare in Arrow as the database orders them (not text, decimals kept as text, floats)."""
    return pa.types.is_integer(t) or pa.types.is_temporal(t)
