"""The Spark engine (``engine: spark``): ``preflight`` for ``check`` and every run, and its own run loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dativo_ingest.engines.spark.options import FILE_SOURCES, JDBC_SOURCES, inputs
from dativo_ingest.engines.spark.session import check_runtime
from dativo_ingest.errors import ConfigError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope
    from dativo_ingest.stream import Message


class SparkEngine:
    """Reads PostgreSQL and MySQL/MariaDB over JDBC (partitioned) and CSV/Parquet/JSON-lines files on Spark; the
    tasks write the table's data files and this process commits them with the state (``engines/spark/run``)."""

    name = "spark"

    def preflight(self, plan: JobPlan) -> None:
        """The options, the source, the target and the write are ones this engine runs, and pyspark, Java and the
        JDBC driver are installed: one line naming the file, the field and the fix otherwise."""
        inp = inputs(plan)  # validates engine.options.spark
        if plan.source_connector not in JDBC_SOURCES and plan.source_connector not in FILE_SOURCES:
            raise ConfigError(plan.job_path, f"engine spark does not read '{plan.source_connector}' (it reads "
                              f"{', '.join(sorted({*JDBC_SOURCES, *FILE_SOURCES}))})", field="engine",
                              fix="use engine: native")
        if plan.target_connector != "iceberg":
            raise ConfigError(plan.job_path, f"engine spark writes Iceberg tables, not '{plan.target_connector}'",
                              field="target_connector", fix="use target_connector: iceberg, or engine: native")
        if plan.read.detect_deletes and plan.source_connector not in JDBC_SOURCES:
            raise ConfigError(plan.job_path, "engine spark detects deletes in databases only",
                              field="source.incremental.detect_deletes", fix="remove it, or use engine: native")
        check_runtime(inp.options, plan.source_connector, plan.job_path)
        if plan.source_connector in JDBC_SOURCES:
            plan.notes.append(f"spark {inp.options.master}: JDBC reads split on "
                              f"{inp.options.partition_column or 'the integer primary key, if any'}")

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """Not used: Spark tasks write the data files themselves; ``run.dispatch.run_job`` runs a spark job
        through ``engines/spark/run.py``."""
        raise NotImplementedError("the spark engine writes its own data files: run the job with "
                                  "dativo_ingest.run.dispatch.run_job")


__all__ = ["SparkEngine"]
