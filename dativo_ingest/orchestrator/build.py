"""A loaded runner file → Dagster ``Definitions``.

One asset per job, keyed ``<tenant>/<table>``; one asset job and one schedule per runner entry, with the
entry's ``RetryPolicy`` and the run tags ``dativo/tenant`` and ``dativo/schedule`` (the instance's tag
concurrency limits use ``dativo/tenant``: see ``instance.py``). Each asset runs its job exactly as
``dativo_ingest run --config`` does (``startup_sequence`` then ``run_job``) and records rows, the snapshot
id and the committed state in the materialization's metadata.

Every asset and schedule is built by a factory function that receives its own job or entry, so no
definition shares a loop variable with another (the original project's assets all ran the last job).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from dativo_ingest.config import load_job_plan
from dativo_ingest.config.loader import find_project_root
from dativo_ingest.config.models import Registry
from dativo_ingest.config.plan import JobPlan
from dativo_ingest.errors import ConfigError, DativoError, ValidationFailed
from dativo_ingest.logs import redact
from dativo_ingest.matrix import load_registry
from dativo_ingest.orchestrator.config import ResolvedSchedule, Runner, load_runner, runner_config_path
from dativo_ingest.sinks.layout import quarantine_name, table_identifier

if TYPE_CHECKING:
    from dativo_ingest.run.job import RunResult

TENANT_TAG = "dativo/tenant"
SCHEDULE_TAG = "dativo/schedule"
#: failures that a retry cannot fix: the configuration or the data is wrong
NOT_RETRYABLE = (ConfigError, ValidationFailed, NotImplementedError)


@dataclass(frozen=True)
class JobSpec:
    """One job file as the orchestrator sees it."""

    path: Path
    job_name: str
    tenant_id: str
    table: str
    #: the table as users see it (``sinks.layout.table_identifier``)
    identifier: str

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.tenant_id, self.table])


@dataclass(frozen=True)
class RunSettings:
    """What every asset needs at run time besides its job file."""

    secrets_dir: Path | None
    mode: str


def execute_job(spec: JobSpec, settings: RunSettings) -> RunResult:
    """Run one job through the same code path as ``dativo_ingest run --config`` and return its ``RunResult``."""
    from dativo_ingest.run.dispatch import run_job
    from dativo_ingest.startup import startup_sequence

    startup = startup_sequence(config=spec.path, secrets_dir=settings.secrets_dir, mode=settings.mode,
                               json_logs=True)
    return run_job(startup.plans[0])


def run_metadata(spec: JobSpec, result: RunResult) -> dict[str, Any]:
    """What a materialization records: the run's summary (rows, snapshot id, …), its state and its job file."""
    meta: dict[str, Any] = {"job_file": dg.MetadataValue.path(str(spec.path)),
                            "status": dg.MetadataValue.text("partial" if result.exit_code else "ok")}
    for key, value in result.summary().items():
        if key == "run_id":
            meta["dativo_run_id"] = dg.MetadataValue.text(str(value))
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            meta[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            meta[key] = dg.MetadataValue.float(value)
        elif isinstance(value, str):
            meta[key] = dg.MetadataValue.text(value)
    meta["state"] = dg.MetadataValue.json(result.state or {})
    return meta


def job_asset(spec: JobSpec, settings: RunSettings) -> dg.AssetsDefinition:
    """The asset of one job; ``spec`` and ``settings`` are bound here, once per job."""

    @dg.asset(
        key=spec.asset_key,
        group_name=spec.tenant_id,
        kinds={"iceberg"},
        description=f"dativo_ingest job {spec.path.name} → Iceberg table {spec.identifier}",
        metadata={"job_file": str(spec.path), "table": spec.identifier},
        tags={TENANT_TAG: spec.tenant_id},
    )
    def _materialize(context) -> dg.MaterializeResult:  # noqa: ANN001 - dagster rejects string annotations
        try:
            result = execute_job(spec, settings)
        except NOT_RETRYABLE as exc:
            raise dg.Failure(description=redact(str(exc)), allow_retries=False) from None
        except DativoError as exc:
            raise dg.Failure(description=redact(str(exc)), allow_retries=True) from None
        except Exception as exc:
            context.log.error(redact(traceback.format_exc()))
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise dg.Failure(description=redact(f"internal error: {type(exc).__name__}: {first}"),
                             allow_retries=True) from None
        summary = result.summary()
        if result.exit_code:
            context.log.warning(f"{result.rows_quarantined} row(s) quarantined to {quarantine_name(spec.identifier)}")
        context.log.info(redact(f"dativo run {summary}"))
        return dg.MaterializeResult(metadata=run_metadata(spec, result))

    return _materialize


def schedule_for(entry_schedule: ResolvedSchedule, specs: list[JobSpec],
                 runner_path: Path) -> tuple[dg.UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """The asset job and the schedule of one runner entry; the entry is bound here, once per entry."""
    entry = entry_schedule.entry
    tenants = sorted({s.tenant_id for s in specs})
    if len(tenants) != 1:
        raise ConfigError(runner_path, f"schedule '{entry.name}' runs jobs of several tenants ({', '.join(tenants)})",
                          field="schedules", fix="one tenant per schedule: split the folder")
    cron = entry.cron_schedule
    if not is_valid_cron_string(cron):
        raise ConfigError(runner_path, f"schedule '{entry.name}': '{cron}' is not a valid cron expression",
                          field="schedules.cron", fix="use five fields, e.g. \"0 * * * *\" (hourly)")
    retry = (dg.RetryPolicy(max_retries=entry.retries, delay=entry.backoff_seconds, backoff=dg.Backoff.EXPONENTIAL)
             if entry.retries else None)
    tags = {**entry.tags, TENANT_TAG: tenants[0], SCHEDULE_TAG: entry.name}
    job = dg.define_asset_job(
        name=entry.name,
        selection=dg.AssetSelection.assets(*[s.asset_key for s in specs]),
        description=f"runner schedule {entry.name}: {', '.join(s.path.name for s in specs)}",
        tags=tags,
        executor_def=dg.in_process_executor,  # one job at a time per run; runs are limited per tenant
        op_retry_policy=retry,
    )
    schedule = dg.ScheduleDefinition(
        name=entry.name,
        job=job,
        cron_schedule=cron,
        execution_timezone=entry.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if entry.enabled else dg.DefaultScheduleStatus.STOPPED,
        tags=tags,
        description=f"{cron} ({entry.timezone})" + ("" if entry.enabled else ", disabled in the runner file"),
    )
    return job, schedule


def load_plans(runner: Runner) -> dict[Path, JobPlan]:
    """Every job file of the runner as a plan, validated as ``dativo_ingest check`` would (no infrastructure)."""
    registries: dict[Path, Registry] = {}
    plans: dict[Path, JobPlan] = {}
    for resolved in runner.schedules:
        for path in resolved.job_files:
            if path in plans:
                continue
            root = find_project_root(path)
            if root not in registries:
                registries[root] = load_registry(root)
            plans[path] = load_job_plan(path, secrets_dir=runner.secrets_dir, mode=runner.config.mode,
                                        registry=registries[root])
    return plans


def job_specs(runner: Runner, plans: dict[Path, JobPlan] | None = None) -> dict[Path, JobSpec]:
    """One ``JobSpec`` per job file; two jobs writing the same table are an error."""
    specs: dict[Path, JobSpec] = {}
    by_key: dict[dg.AssetKey, JobSpec] = {}
    for path, plan in (plans if plans is not None else load_plans(runner)).items():
        spec = JobSpec(path=path, job_name=plan.job_name, tenant_id=plan.tenant_id, table=plan.asset.name,
                       identifier=table_identifier(plan))
        other = by_key.get(spec.asset_key)
        if other is not None:
            raise ConfigError(runner.path, f"jobs {other.path} and {path} both write {spec.identifier}",
                              field="schedules", fix="one job per table: schedule only one of them")
        specs[path] = spec
        by_key[spec.asset_key] = spec
    return specs


def build_definitions(runner: Runner, plans: dict[Path, JobPlan] | None = None) -> dg.Definitions:
    specs = job_specs(runner, plans)
    settings = RunSettings(secrets_dir=runner.secrets_dir, mode=runner.config.mode)
    assets = [job_asset(spec, settings) for spec in specs.values()]
    jobs, schedules = [], []
    for resolved in runner.schedules:
        job, schedule = schedule_for(resolved, [specs[p] for p in resolved.job_files], runner.path)
        jobs.append(job)
        schedules.append(schedule)
    return dg.Definitions(assets=assets, jobs=jobs, schedules=schedules)


def definitions_from_env() -> dg.Definitions:
    """``$DATIVO_RUNNER_CONFIG`` (default ``configs/runner.yaml``, relative to the working directory)."""
    return build_definitions(load_runner(runner_config_path()))


__all__ = ["JobSpec", "build_definitions", "definitions_from_env", "execute_job", "job_asset", "job_specs",
           "load_plans", "schedule_for"]
