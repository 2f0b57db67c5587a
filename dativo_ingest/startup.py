"""``startup_sequence()``: everything a run validates before it reads a single row.

The seed guide's eight steps: load jobs → tenant → logging → secrets → environment variables →
infrastructure → state → job configurations against the registry. Each failure is one line naming
the file, the field and the fix (a ``DativoError``); nothing is written before all steps pass.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dativo_ingest.config import discover_job_files, find_project_root, load_job_plan
from dativo_ingest.config.loader import load_policy
from dativo_ingest.config.plan import JobPlan
from dativo_ingest.config.policy import PolicyConfig, check_connectors, protect_fields
from dativo_ingest.config.read_policy import check_read_policy
from dativo_ingest.config.secrets import is_secret_name
from dativo_ingest.engines.base import get_engine
from dativo_ingest.engines.native.checks import check_database
from dativo_ingest.errors import ConfigError, InfrastructureError
from dativo_ingest.logs import redact, setup_logging
from dativo_ingest.matrix import load_registry
from dativo_ingest.paths import dativo_home, state_dir
from dativo_ingest.quality import rules_for_asset

log = logging.getLogger(__name__)

MODES = ("self_hosted", "cloud")


@dataclass
class Startup:
    plans: list[JobPlan] = field(default_factory=list)
    tenant_id: str | None = None
    steps: list[str] = field(default_factory=list)


def _job_files(config: Path | None, job_dir: Path | None) -> list[Path]:
    if bool(config) == bool(job_dir):
        raise ConfigError(None, "give exactly one of --config FILE or --job-dir DIR",
                          fix="e.g. --config jobs/acme/x.yaml")
    if config:
        if not config.is_file():
            raise ConfigError(config, "job file not found", fix="check the path given to --config")
        return [config]
    assert job_dir is not None
    if not job_dir.is_dir():
        raise ConfigError(job_dir, "job directory not found", fix="check the path given to --job-dir")
    files = discover_job_files(job_dir)
    if not files:
        raise ConfigError(job_dir, "no job files (*.yaml) in this directory", fix="add jobs/<tenant>/<job>.yaml")
    return files


def startup_sequence(
    *,
    config: Path | None = None,
    job_dir: Path | None = None,
    secrets_dir: Path | None = None,
    tenant_id: str | None = None,
    mode: str = "self_hosted",
    json_logs: bool = True,
    log_level: str | None = None,
    check_infrastructure: bool = True,
) -> Startup:
    out = Startup()
    # 1. load jobs
    files = _job_files(config, job_dir)
    out.steps.append(f"jobs: {len(files)} file(s)")
    if mode not in MODES:
        raise ConfigError(None, f"unknown mode '{mode}'", field="--mode", fix="use self_hosted or cloud")
    # 3. logging (before anything that may log); the level may be refined by the job below
    setup_logging(log_level or "INFO", json=json_logs)
    # environment variables that look like secrets are redacted from the start
    redact.add(v for k, v in os.environ.items() if is_secret_name(k))
    if secrets_dir is not None and not secrets_dir.is_dir():
        raise ConfigError(secrets_dir, "secrets directory not found",
                          fix="point --secrets-dir at a folder holding <tenant>/ sub-folders")
    registry = None
    policies: dict[Path, PolicyConfig | None] = {}
    for path in files:
        root = find_project_root(path)
        if registry is None:
            registry = load_registry(root)
        # 2. tenant, 4. secrets, 5. env vars, 8. registry validation: all inside load_job_plan
        plan = load_job_plan(path, secrets_dir=secrets_dir, tenant_id=tenant_id, mode=mode, registry=registry)
        check_read_policy(plan.read, plan.asset, write_mode=plan.write_mode, job_path=plan.job_path,
                          asset_path=plan.asset_path)
        apply_policy(plan, policies.setdefault(root, load_policy(root)))
        if rules_for_asset(plan.asset):  # without rules there is nothing to bind (and no DuckDB to load)
            from dativo_ingest.quality.evaluate import check_rules

            check_rules(plan.asset, plan.asset_path)  # every quality rule binds to the asset's columns
        redact.add(plan.secrets.values())
        if out.tenant_id is None:
            out.tenant_id = plan.tenant_id
        elif plan.tenant_id != out.tenant_id:
            raise ConfigError(path, f"tenant_id '{plan.tenant_id}' differs from '{out.tenant_id}' of the other jobs",
                              field="tenant_id", fix="--job-dir runs the jobs of one tenant: split the directory")
        out.plans.append(plan)
    if log_level is None and out.plans:
        level = _job_log_level(out.plans[0])
        if level:
            logging.getLogger().setLevel(level)
    out.steps += [f"tenant: {out.tenant_id}", "logging", "secrets", "environment"]
    # 6. infrastructure — the local home first: the embedded catalog and connector venvs live there
    _check_writable(dativo_home(), "DATIVO_HOME")
    if check_infrastructure:
        for plan in out.plans:
            check_database(plan)  # whatever the engine: before any connector is installed or started
            get_engine(plan.engine).preflight(plan)
            check_target(plan)
        out.steps.append("infrastructure")
    # 7. state
    _check_writable(state_dir(), "STATE_DIR")
    out.steps += ["state", "registry"]
    # once everything passed (a failure stays one line): secrets that redaction protects poorly
    for line in dict.fromkeys(line for plan in out.plans for line in plan.secrets.weak_secrets()):
        log.warning(line)
    return out


def apply_policy(plan: JobPlan, policy: PolicyConfig | None) -> None:
    """Refuse what the tenant's policy (``configs/policy.yaml``) forbids, and set ``plan.asset`` (its dropped
    fields gone) and ``plan.protection`` (mask / hash), so ``check`` refuses what ``run`` would."""
    if policy is None:
        return
    check_connectors(policy, plan.tenant_id, source=plan.source_connector, target=plan.target_connector,
                     root=plan.project_root, job_path=plan.job_path)
    plan.asset, plan.protection = protect_fields(policy, plan.tenant_id, plan.asset, read=plan.read,
                                                 secrets=plan.secrets, root=plan.project_root,
                                                 job_path=plan.job_path, asset_path=plan.asset_path)
    if plan.protection.salt:  # a secret whatever its name, and wherever it was set
        redact.add([plan.protection.salt])


def _job_log_level(plan: JobPlan) -> str | None:
    cfg = plan.job.logging
    return str(cfg.level).upper() if cfg and cfg.level else None


def _check_writable(path: Path, variable: str) -> None:
    if path.exists() and not path.is_dir():
        raise InfrastructureError(f"{path} is a file, not a folder; set {variable} to a writable folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".dativo-write-check-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique: runs start together
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise InfrastructureError(f"{path} is not writable ({exc.strerror}); set {variable} to a writable folder") \
            from None


def check_target(plan: JobPlan) -> None:
    """Can the job's target be reached and written? (object store, bucket, credentials, a probe write, the
    catalog); one line naming the endpoint, the bucket and the fix — the sink's ``preflight``."""
    from dativo_ingest.sinks.factory import check_target as check_sink_target

    check_sink_target(plan)
