"""``open_sink``: the one way every part of the product gets a job's sink (the runner, the job pool, the target
preflight of ``startup_sequence()``, ``state show`` / ``state reset``).

A sink is cheap to open: nothing is read, created or connected until it is used, so ``check`` opens one to
run its preflight without creating a catalog or a table.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pyarrow as pa

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.errors import ConfigError
from dativo_ingest.sinks.base import Sink
from dativo_ingest.sinks.iceberg.catalog import choose_catalog
from dativo_ingest.sinks.iceberg.contract import contract_properties, contract_schema
from dativo_ingest.sinks.iceberg.markdown_kv import iceberg_sink_class
from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.sinks.layout import quarantine_name, table_identifier, target_partitioning
from dativo_ingest.stage.stage import INGEST_DATE, asset_fields, output_schema

#: the run id of a sink opened to check, prepare or read state (it writes no data file)
NO_RUN = "no-run"
#: ``sinks.files.sink.FILE_TARGETS`` and ``sinks.database.sink.DATABASE_TARGETS``, named here so that a job's sink
#: imports only its own kind (the database sinks import DuckDB and the drivers' SQL; test_sink_factory checks these)
FILE_TARGETS = ("s3", "minio", "azure_blob", "local", "markdown_kv", "csv")
DATABASE_TARGETS = ("postgres", "mysql")
#: every target_connector this package writes
TARGETS = ("iceberg", *FILE_TARGETS, *DATABASE_TARGETS)


def data_schema(plan: JobPlan) -> pa.Schema:
    """The Arrow schema of the job's staged rows: the asset's fields, then the system columns."""
    return output_schema(asset_fields(plan.asset), add_ingest_date=INGEST_DATE in target_partitioning(plan))


def open_sink(plan: JobPlan, *, run_id: str = NO_RUN, ingest_date: date | None = None,
              quarantine: pa.Schema | None = None) -> Sink:
    """The sink of the job's table (an Iceberg table, a plain-file dataset for ``FILE_TARGETS``, a database table
    for ``DATABASE_TARGETS``).

    ``run_id`` and ``ingest_date`` name and place the files a run writes. With ``quarantine`` (the schema of the
    quarantined rows) it is the sibling ``…__quarantine`` table instead: append, no key, no state."""
    day = ingest_date or datetime.now(timezone.utc).date()
    name = plan.asset.name
    if plan.target_connector in FILE_TARGETS:
        from dativo_ingest.sinks.files.sink import file_target

        target = file_target(plan)
        assert target is not None
        if quarantine is not None:
            return target.sink(quarantine_name(name), quarantine, run_id=run_id, ingest_date=day)
        return target.sink(name, data_schema(plan), run_id=run_id, ingest_date=day,
                           primary_key=plan.asset.primary_key, write_mode=plan.write_mode)
    if plan.target_connector in DATABASE_TARGETS:
        from dativo_ingest.sinks.database.sink import database_sink

        return database_sink(plan, quarantine=quarantine, data_schema=data_schema(plan))
    if plan.target_connector != "iceberg":
        raise ConfigError(plan.job_path, f"'{plan.target_connector}' cannot be written yet", field="target_connector",
                          fix=f"use one of {', '.join(TARGETS)}")
    catalog = choose_catalog(plan.target, plan.job_path)
    if quarantine is not None:
        return IcebergSink(catalog, table_identifier(plan, quarantine=True), quarantine, write_mode="append",
                           job_path=plan.job_path)
    sink_class = iceberg_sink_class(plan.target.markdown_kv_storage, data_columns=plan.asset.field_names, section=name,
                                    job_path=plan.job_path)
    schema = data_schema(plan)
    if sink_class is IcebergSink:  # the table carries the contract: required columns, docs, identifier fields
        schema = contract_schema(schema, plan.asset)
    sink: Sink = sink_class(
        catalog, table_identifier(plan), schema,
        partitioning=target_partitioning(plan), primary_key=plan.asset.primary_key, write_mode=plan.write_mode,
        properties={"dativo.asset": name, "dativo.tenant": plan.tenant_id,
                    "dativo.asset_version": str(plan.asset.version or ""),
                    **contract_properties(plan.asset, plan.secrets.conceal), **plan.protection.table_property()},
        job_path=plan.job_path,
    )
    return sink


def check_target(plan: JobPlan) -> None:
    """Can the job's target be reached and written? One line naming what failed and the fix (writes no data)."""
    with open_sink(plan) as sink:
        sink.preflight()


__all__ = ["DATABASE_TARGETS", "FILE_TARGETS", "NO_RUN", "TARGETS", "check_target", "data_schema", "open_sink"]
