"""What the SQL sources share: which tables to read, and the SELECT with a pushed-down cursor filter."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dativo_ingest.errors import ConfigError
from dativo_ingest.incremental import FULL_REFRESH_STRATEGIES
from dativo_ingest.sqltext import quote_ident, quote_ident_mysql, quote_literal, quote_literal_mysql

#: a cursor value that is a plain number (compared as a number, not as text)
NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


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
        return self.name or "query"


def quote_qualified(name: str, quoting: Quoting = STANDARD) -> str:
    """``schema.table`` → ``"schema"."table"``; an already quoted name is kept as written."""
    if quoting.mark in name:
        return name
    return ".".join(quoting.ident(part) for part in name.split("."))


def resolve_tables(source: dict[str, Any], *, default_stream: str) -> list[SqlTable]:
    """``source.tables[{name, object, cursor_field}]`` or ``source.query`` (→ the asset's stream)."""
    incremental = source.get("incremental") or {}
    strategy = str(incremental.get("strategy") or "").lower()
    default_cursor = None if strategy in FULL_REFRESH_STRATEGIES else incremental.get("cursor_field")
    if source.get("query"):
        return [SqlTable(default_stream, None, str(source["query"]).strip().rstrip(";"), default_cursor)]
    entries = source.get("tables") or []
    if not entries:
        raise ConfigError(None, "no table to read", field="source.tables",
                          fix="add source.tables: [{name: public.orders, object: orders}] or source.query")
    out = []
    for i, entry in enumerate(entries):
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        if not entry.get("name"):
            raise ConfigError(None, "has no name", field=f"source.tables[{i}]", fix="e.g. name: public.orders")
        cursor = None if strategy in FULL_REFRESH_STRATEGIES else (entry.get("cursor_field") or default_cursor)
        out.append(SqlTable(str(entry.get("object") or entry["name"]), str(entry["name"]), None, cursor))
    return out


def base_select(table: SqlTable, quoting: Quoting = STANDARD) -> str:
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
