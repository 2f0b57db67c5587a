"""The native engine: our own extractors, Arrow all the way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from dativo_ingest.engines.common.read_ahead import run_ahead
from dativo_ingest.engines.native.checks import check_source, object_source
from dativo_ingest.engines.native.files.csv import read_csv, resolve_files
from dativo_ingest.engines.native.sources import OBJECT_SOURCES, SQL_DIALECTS, SQL_SOURCES
from dativo_ingest.engines.native.sql.common import MYSQL, STANDARD, Quoting, SqlTable, base_select, resolve_tables
from dativo_ingest.stream import Batch, Checkpoint, Message, SourceKeys

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope

SqlReader = Callable[[list[SqlTable], dict[str, "str | None"]], Iterator[Message]]


class NativeEngine:
    """Our own extractors: files (csv, markdown_kv) and databases (postgres, mysql, sqlite), Arrow all the way."""

    name = "native"

    def preflight(self, plan: JobPlan) -> None:
        """The source must be one the native engine reads, and a REST API must accept one cheap request (a
        database was checked by ``startup_sequence`` for every engine); one line naming file, field and fix."""
        check_source(plan)

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """The job's files or tables as Arrow batches, from the files' and cursors' committed state. Read in a
        thread of their own (``run_ahead``: the same messages, in order), so parsing or fetching the next batch
        overlaps staging and writing this one; a bad job fails here, before the thread starts."""
        return run_ahead(self._messages(plan, state), name=f"native-{plan.source_connector}")

    @staticmethod
    def _messages(plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        connector = plan.source_connector
        if connector == "csv":
            files = resolve_files(plan.source, project_root=plan.project_root, default_stream=plan.default_stream,
                              access=plan.file_access)
            return read_csv(
                files,
                column_names=[f.name for f in plan.asset.fields],
                state=state.streams,
                skip_unchanged=plan.read.skip_unchanged_files,
            )
        if connector == "markdown_kv":
            return _read_markdown_kv(plan, state)
        if connector in SQL_SOURCES:
            return _read_sql(plan, state)
        if connector in OBJECT_SOURCES:
            return _read_objects(plan, state)
        from dativo_ingest.engines.native.sources import has_api

        if plan.source_recipe is not None and has_api(plan.source_recipe):
            from dativo_ingest.engines.native.rest.reader import read_rest

            return read_rest(plan, state)
        raise NotImplementedError(
            f"the native engine has no '{connector}' source yet; available: csv, markdown_kv, "
            f"{', '.join(sorted(SQL_SOURCES | OBJECT_SOURCES))}, and any API whose recipe has an api: section (REST)"
        )


def _read_objects(plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
    from dativo_ingest.engines.native.files.objects import read_objects

    store, objects = object_source(plan)
    return read_objects(store, objects, state=state.streams, skip_unchanged=plan.read.skip_unchanged_files)


def _read_markdown_kv(plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
    from dativo_ingest.engines.native.files.markdown_kv import read_markdown_kv
    from dativo_ingest.stage.types import parse_type

    files = resolve_files(plan.source, project_root=plan.project_root, default_stream=plan.default_stream,
                              access=plan.file_access)
    return read_markdown_kv(
        files,
        fields=[(f.name, parse_type(f.type).arrow) for f in plan.asset.fields],
        state=state.streams,
        skip_unchanged=plan.read.skip_unchanged_files,
    )


def _read_sql(plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
    tables = resolve_tables(plan.source.tables or [], plan.source.query, default_stream=plan.default_stream,
                            read=plan.read)
    # a full refresh has no cursor (the read policy gives none)
    cursors = {table.stream: state.cursor_value(table.stream, table.cursor_field) for table in tables}
    reader = _sql_reader(plan, plan.read.lookback_seconds)
    yield from reader(tables, cursors)
    if plan.read.detect_deletes:
        quoting = MYSQL if SQL_DIALECTS[plan.source_connector] == "mysql" else STANDARD
        yield from _read_keys(reader, tables, list(plan.asset.primary_key), quoting)


def _read_keys(reader: SqlReader, tables: list[SqlTable], primary_key: list[str],
               quoting: Quoting = STANDARD) -> Iterator[Message]:
    """Every primary key each table holds now, read after its rows (so a row the data read saw but that is
    gone now is deleted, and a row inserted since is simply read by the next run)."""
    columns = ", ".join(f"q.{quoting.ident(c)}" for c in primary_key)
    key_tables = [SqlTable(t.stream, None, f"SELECT {columns} FROM {base_select(t, quoting)} AS q") for t in tables]
    for message in reader(key_tables, {}):
        if isinstance(message, Batch):
            yield SourceKeys(message.stream, message.data)
        elif isinstance(message, Checkpoint):
            yield SourceKeys(message.stream or "", None)


def _sql_reader(plan: JobPlan, lookback: int) -> SqlReader:
    """A function reading a list of tables (with committed cursors) from the job's database."""
    conn = plan.source.connection_values
    dialect = SQL_DIALECTS[plan.source_connector]
    if dialect == "sqlite":
        from dativo_ingest.engines.native.sql.sqlite import database_path, read_sqlite

        path = database_path(conn, plan.project_root)
        return lambda tables, cursors: read_sqlite(tables, path, cursors=cursors, lookback_seconds=lookback)
    if dialect == "mysql":
        from dativo_ingest.engines.native.sql.mysql import read_mysql

        return lambda tables, cursors: read_mysql(tables, conn, cursors=cursors, lookback_seconds=lookback)
    from dativo_ingest.engines.native.sql.postgres import read_postgres

    return lambda tables, cursors: read_postgres(tables, conn, cursors=cursors, lookback_seconds=lookback)
