"""Which sources the native engine reads by itself, and the stream of a job that names none."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan

SQL_SOURCES = frozenset({"postgres", "postgresql", "sqlite", "mysql"})
#: object stores read as sources (CSV, Parquet, JSON-lines objects under a prefix)
OBJECT_SOURCES = frozenset({"s3", "minio", "azure_blob"})
#: the sources the native engine reads without a recipe (REST APIs are read from a recipe's api: section)
BUILT_IN_SOURCES = frozenset({"csv", "markdown_kv", *SQL_SOURCES, *OBJECT_SOURCES})


def default_stream(plan: JobPlan) -> str:
    """The stream of a job that names none: the asset's ``object`` (or name)."""
    return str(plan.asset.object or plan.asset.name)


__all__ = ["BUILT_IN_SOURCES", "OBJECT_SOURCES", "SQL_SOURCES", "default_stream"]
