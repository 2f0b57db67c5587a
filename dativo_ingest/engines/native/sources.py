"""Which sources the native engine reads by itself."""

from __future__ import annotations

from typing import Any, Literal

SqlDialect = Literal["postgres", "mysql", "sqlite"]

#: database connector names (and their aliases) -> the dialect that reads them; the one rule for "is a database"
SQL_DIALECTS: dict[str, SqlDialect] = {
    "postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite",
}
SQL_SOURCES = frozenset(SQL_DIALECTS)
#: object stores read as sources (CSV, Parquet, JSON-lines objects under a prefix)
OBJECT_SOURCES = frozenset({"s3", "minio", "azure_blob"})
#: the sources the native engine reads without a recipe (REST APIs are read from a recipe's api: section)
BUILT_IN_SOURCES = frozenset({"csv", "markdown_kv", *SQL_SOURCES, *OBJECT_SOURCES})


def has_api(recipe: Any) -> bool:
    """Whether a source recipe describes a REST API (has an ``api:`` section): then the native engine reads it."""
    extra = getattr(recipe, "model_extra", None) or {}
    return isinstance(extra.get("api"), dict)


__all__ = ["BUILT_IN_SOURCES", "OBJECT_SOURCES", "SQL_DIALECTS", "SQL_SOURCES", "SqlDialect", "has_api"]
