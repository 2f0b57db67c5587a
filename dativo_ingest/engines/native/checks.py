"""Can the job's source be read? ``check_database`` (every engine: ``startup_sequence`` runs it before any
connector is installed or started) and the native engine's ``preflight`` (``check_source``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dativo_ingest.errors import ConfigError, InfrastructureError, SourceError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.engines.native.files.objects import StoredObject
    from dativo_ingest.engines.native.sql.common import Quoting, SqlTable
    from dativo_ingest.storage.stores import ObjectStore

#: database sources, by the name a job gives them


def check_source(plan: JobPlan) -> None:
    """The native engine reads this source (one line naming the job and the fix otherwise), and a REST API
    accepts one cheap authenticated request (one line naming the recipe and the secret to fix)."""
    from dativo_ingest.engines.native.sources import BUILT_IN_SOURCES, OBJECT_SOURCES, has_api

    if plan.source_connector in OBJECT_SOURCES:
        object_source(plan)  # the store answers and the patterns are valid (the objects are listed, not read)
        return
    if plan.source_connector in BUILT_IN_SOURCES:
        return
    if plan.source_recipe is None or not has_api(plan.source_recipe):
        others = [e for e in plan.source_registry.engines_supported if e != "native"]
        raise ConfigError(plan.job_path, f"the native engine has no '{plan.source_connector}' source (it reads "
                          f"{', '.join(sorted(BUILT_IN_SOURCES))} and REST APIs whose recipe has an api: section)",
                          field="engine", fix=f"use engine: {' or '.join(others)}" if others else
                          "give the recipe an api: section")
    from dativo_ingest.engines.native.rest.check import check_rest

    try:
        check_rest(plan)  # its messages name the recipe
    except InfrastructureError as exc:
        raise InfrastructureError(f"{plan.job_path}: source.connection: {exc.message}") from None


def object_source(plan: JobPlan) -> tuple[ObjectStore, list[StoredObject]]:
    """The store of an object-storage source and the objects its patterns match now (listed, not read); a
    mistake is one line naming the job."""
    from dativo_ingest.engines.native.files.objects import resolve_objects, source_store

    try:
        store = source_store(plan.source_connector, plan.source.connection_values, plan.job_path)
        return store, resolve_objects(store, plan.source, default_stream=plan.default_stream)
    except ConfigError as exc:
        if exc.path is not None:
            raise
        raise ConfigError(plan.job_path, exc.message) from None
    except InfrastructureError as exc:
        raise InfrastructureError(f"{plan.job_path}: source.connection: {exc.message}") from None
    except SourceError as exc:
        raise SourceError(f"{plan.job_path}: {exc.message}") from None


def check_database(plan: JobPlan) -> None:
    """A database source accepts a connection (short timeout; one line naming host:port, user, database) and
    holds every table the job reads, and its queries run (``SELECT … LIMIT 0``: no row is read)."""
    from dativo_ingest.engines.native.sources import SQL_DIALECTS

    dialect = SQL_DIALECTS.get(plan.source_connector)
    if dialect is None:
        return
    conn = plan.source.connection_values
    try:
        tables = _tables(plan)
        if dialect == "postgres":
            from dativo_ingest.engines.native.sql.postgres import connect

            _probe(plan, connect(conn), tables, "PostgreSQL")
        elif dialect == "mysql":
            from dativo_ingest.engines.native.sql import mysql
            from dativo_ingest.engines.native.sql.common import MYSQL

            _probe(plan, mysql.connect(conn), tables, "MySQL", MYSQL)
        else:
            import sqlite3

            from dativo_ingest.engines.native.sql.sqlite import database_path

            path = database_path(conn, plan.project_root)
            _probe(plan, sqlite3.connect(f"file:{path}?mode=ro", uri=True), tables, "SQLite")
    except InfrastructureError as exc:
        raise InfrastructureError(f"{plan.job_path}: source.connection: {exc.message}") from None


def _tables(plan: JobPlan) -> list[SqlTable]:
    from dativo_ingest.engines.native.sql.common import resolve_tables

    extractor = plan.job.extractor
    if extractor is not None and extractor.select is not None and not plan.source.tables and not plan.source.query:
        return []  # the tap's own select rules name the streams: only the connection is checked
    try:
        return resolve_tables(plan.source.tables or [], plan.source.query, default_stream=plan.default_stream,
                              read=plan.read)
    except ConfigError as exc:
        raise ConfigError(plan.job_path, exc.message) from None


def _probe(plan: JobPlan, con: Any, tables: list[SqlTable], product: str, quoting: Quoting | None = None) -> None:
    """``SELECT * FROM <table or (query)> LIMIT 0`` for each table; the first that fails is one ``ConfigError``."""
    from dativo_ingest.engines.native.sql.common import STANDARD, base_select, driver_text

    names = [t.name for t in plan.source.tables or []]
    try:
        for table in tables:
            cur = con.cursor()
            try:
                cur.execute(f"SELECT * FROM {base_select(table, quoting or STANDARD)} AS q LIMIT 0")
                cur.fetchall()
            except Exception as exc:  # the driver's error names the missing table or the query's mistake
                said = exc.args[-1] if len(exc.args) == 2 and isinstance(exc.args[0], int) else exc  # PyMySQL
                text = driver_text(str(said), str(plan.source.connection_values.get("password") or ""))
                _rollback(con)
                if table.name is None:
                    raise ConfigError(plan.job_path, f"the query fails in {product}: {text[:200]}",
                                      field="source.query", fix="run it by hand and fix it") from None
                i = names.index(table.name) if table.name in names else 0
                raise ConfigError(plan.job_path, f"table '{table.name}' cannot be read in {product}: {text[:200]}",
                                  field=f"source.tables[{i}].name",
                                  fix=f"check the name (schema.table); `dativo_ingest discover --connector "
                                      f"{plan.source_connector} --tenant-id {plan.tenant_id}` lists the tables"
                                  ) from None
            finally:
                cur.close()
    finally:
        con.close()


def _rollback(con: Any) -> None:
    """Roll back a failed statement, if the driver has transactions (ignored when it cannot)."""
    try:
        con.rollback()
    except Exception:  # noqa: BLE001 - the connection is closed right after
        pass


__all__ = ["check_database", "check_source", "object_source"]
