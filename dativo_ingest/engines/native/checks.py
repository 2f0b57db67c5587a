"""Can the job's native source be reached? The native engine's ``preflight``, asked by ``startup_sequence()`` before
anything is read or written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dativo_ingest.errors import InfrastructureError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan


def check_source(plan: JobPlan) -> None:
    """Connect once (short timeout) to a native database source (one line naming host:port, user, database), or
    make one cheap authenticated request to a REST API (one line naming the recipe and the secret to fix)."""
    conn = dict(plan.source.get("connection") or {})
    try:
        if plan.source_connector in ("postgres", "postgresql"):
            from dativo_ingest.engines.native.sql.postgres import connect

            connect(conn).close()
        elif plan.source_connector in ("mysql", "mariadb"):
            from dativo_ingest.engines.native.sql import mysql

            mysql.connect(conn).close()
        elif plan.source_connector == "sqlite":
            from dativo_ingest.engines.native.sql.sqlite import database_path

            database_path(conn, plan.project_root)
        else:
            from dativo_ingest.engines.native.rest.spec import has_api

            if plan.source_recipe is not None and has_api(plan.source_recipe):
                from dativo_ingest.engines.native.rest.check import check_rest

                check_rest(plan)  # its messages name the recipe
    except InfrastructureError as exc:
        raise InfrastructureError(f"{plan.job_path}: source.connection: {exc.message}") from None
