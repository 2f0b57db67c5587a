"""``run_job`` for every engine: the runner of ``run.job``, or the Spark engine's own (its tasks write the data
files; ``engines/spark/run.py``, a ``JobRun`` itself). Kept apart from ``run.job`` so neither imports the other's
engine: the Spark runner builds on ``run.job``."""

from __future__ import annotations

from dativo_ingest.config.engine_names import canonical_engine
from dativo_ingest.config.plan import JobPlan
from dativo_ingest.run import job
from dativo_ingest.run.job import ProgressFn, RunResult


def run_job(plan: JobPlan, *, progress: ProgressFn | None = None) -> RunResult:
    """Run one job to completion on its engine; raises ``DativoError`` subclasses on failure (nothing
    half-written)."""
    if canonical_engine(plan.engine) == "spark":
        from dativo_ingest.engines.spark.run import run_spark_job

        return run_spark_job(plan, progress=progress)
    return job.run_job(plan, progress=progress)


__all__ = ["run_job"]
