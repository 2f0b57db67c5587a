"""What a name may be, where names become table identifiers, folder names or columns: one rule per kind.

- **tenant id** (``jobs/<tenant>/``, ``secrets/<tenant>/``, the Iceberg namespace, the first folder of every
  dataset path): ``[a-z0-9][a-z0-9_-]*``, at most 63 characters.
- **asset name** (``<tenant>.<asset>`` and a dataset folder): ``[a-z][a-z0-9_]*``, at most 128 characters —
  lower case, so two assets never differ by case alone (many catalogs fold case).
- **path segment** (``domain``, ``dataProduct``, a prefix part): letters, digits, ``_ . -``, not ``.``/``..``.
- **object / stream name** (``source.objects``, ``files[].object``, ``tables[].object``, the asset's
  ``object``): any text up to 255 characters without ``/``, ``\\``, ``..``, control characters or
  surrounding spaces (sheet and stream names may hold spaces and upper case).
- **column name**: up to 255 characters, no control characters, no surrounding spaces (a ``.`` is allowed: the
  REST engine names a nested source value ``address.city``, and Iceberg takes it as one top-level column), not
  ``ingest_date`` and not starting with ``_dativo_`` (system columns), and no two columns of one asset equal
  when case is ignored (sources are matched to fields case-insensitively).
"""

from __future__ import annotations

import re

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ASSET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,127}$"
PATH_SEGMENT_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
#: columns the stage adds; no asset field may take their names
SYSTEM_COLUMN_PREFIX = "_dativo_"
RESERVED_COLUMNS = frozenset({"ingest_date"})
TENANT_FIX = "use lowercase letters, digits, '_' and '-' only, at most 63 characters"

_TENANT = re.compile(TENANT_ID_PATTERN)
_ASSET = re.compile(ASSET_NAME_PATTERN)
_SEGMENT = re.compile(PATH_SEGMENT_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def tenant_problem(value: str) -> str | None:
    """Why ``value`` cannot be a tenant id (None: it can)."""
    if len(value) > 63:
        return f"invalid tenant id of {len(value)} characters"
    if not _TENANT.fullmatch(value):
        return f"invalid tenant id {value[:60]!r}"
    return None


def asset_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be an asset name (None: it can)."""
    if not _ASSET.fullmatch(value):
        return (f"asset name '{value[:60]}' cannot form a table name (use lowercase letters, digits and '_', "
                "starting with a letter, at most 128 characters)")
    return None


def path_segment_problem(value: str) -> str | None:
    """Why ``value`` cannot be one folder of a dataset path (None: it can)."""
    if value in (".", "..") or ".." in value or not _SEGMENT.fullmatch(value):
        return (f"'{value[:60]}' cannot be a folder name (use letters, digits, '_', '.' and '-', no '..', "
                "at most 128 characters)")
    return None


def object_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be an object (stream) name (None: it can)."""
    if not value or value != value.strip():
        return "object name is empty or has surrounding spaces"
    if len(value) > 255:
        return "object name is longer than 255 characters"
    if "/" in value or "\\" in value or ".." in value or _CONTROL.search(value):
        return f"object name '{value[:60]}' holds '/', '\\', '..' or a control character"
    return None


def column_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a column of an asset (None: it can)."""
    if not value or value != value.strip():
        return f"field name '{value}' is empty or has surrounding spaces"
    if len(value) > 255:
        return "field name is longer than 255 characters"
    if _CONTROL.search(value):
        return f"field name '{value[:60]}' holds a control character"
    if value.lower().startswith(SYSTEM_COLUMN_PREFIX) or value.lower() in RESERVED_COLUMNS:
        return (f"field name '{value}' is a system column name (ingest_date and _dativo_* are added by "
                "dativo-ingest)")
    return None


__all__ = [
    "ASSET_NAME_PATTERN", "PATH_SEGMENT_PATTERN", "RESERVED_COLUMNS", "SYSTEM_COLUMN_PREFIX", "TENANT_FIX",
    "TENANT_ID_PATTERN",
    "asset_name_problem", "column_name_problem", "object_name_problem", "path_segment_problem", "tenant_problem",
]
