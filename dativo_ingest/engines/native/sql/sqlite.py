"""Native SQLite source: ADBC straight into Arrow record batches, cursor filter pushed down."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dativo_ingest.engines.native.sql.common import NUMBER, SqlTable, build_select, with_commit_points
from dativo_ingest.errors import InfrastructureError
from dativo_ingest.sqltext import quote_literal
from dativo_ingest.stream import Message

log = logging.getLogger(__name__)

_DATETIME = re.compile(r"\d{4}-\d\d-\d\d")
_MS = "'%Y-%m-%d %H:%M:%f'"


def database_path(conn: dict[str, Any], project_root: Path) -> Path:
    """The SQLite file of a connection (relative to the project), which must exist."""
    raw = str(conn.get("database_path") or conn.get("path") or conn.get("database") or "")
    if not raw:
        raise InfrastructureError("SQLite: no database file given (set SQLITE_DATABASE_PATH or "
                                  "source.connection.database_path)")
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else project_root / path
    if not path.is_file():
        raise InfrastructureError(f"SQLite: database file not found: {path} (fix SQLITE_DATABASE_PATH or "
                                  f"source.connection.database_path; relative paths start at {project_root})")
    return path


def _threshold(lookback_seconds: int) -> Any:
    def condition(cursor: str, after: str) -> str:
        if NUMBER.fullmatch(after):
            return f"{cursor} > {after}"
        if _DATETIME.match(after):
            # compared at millisecond precision (strftime %f); a value equal to the boundary at that precision
            # but written with more digits (µs, a 'T', an offset) is re-read — the stage filters exactly
            shift = f", '-{int(lookback_seconds)} seconds'" if lookback_seconds else ""
            here, there = f"strftime({_MS}, {cursor})", f"strftime({_MS}, {quote_literal(after)}{shift})"
            return f"({here} > {there} OR ({here} = {there} AND length({cursor}) > 23))"
        return f"{cursor} > {quote_literal(after)}"
    return condition


def read_sqlite(
    tables: list[SqlTable],
    path: Path,
    *,
    cursors: dict[str, str | None],
    lookback_seconds: int = 0,
) -> Iterator[Message]:
    """Yield each table's rows as Arrow batches and a checkpoint after each."""
    import adbc_driver_sqlite.dbapi as sq

    con = sq.connect(str(path))
    try:
        for table in tables:
            sql = build_select(table, [], after=cursors.get(table.stream), threshold=_threshold(lookback_seconds))
            log.info("sqlite: %s", sql)
            with con.cursor() as cur:
                cur.execute(sql)
                yield from with_commit_points(table, (b for b in cur.fetch_record_batch() if b.num_rows))
    finally:
        con.close()
