"""Quoting for the SQL we generate (DuckDB, PostgreSQL, SQLite all follow the standard here)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An identifier in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string literal in single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
