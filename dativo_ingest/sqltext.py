"""Quoting for the SQL we generate: the standard (DuckDB, PostgreSQL, SQLite) and MySQL's."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An identifier in double quotes, inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string literal in single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident_mysql(name: str) -> str:
    """A MySQL identifier in backticks, inner backticks doubled (double quotes are strings in MySQL)."""
    return "`" + name.replace("`", "``") + "`"


def quote_literal_mysql(value: str) -> str:
    """A MySQL string literal (backslashes are escapes in MySQL's default sql_mode)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
