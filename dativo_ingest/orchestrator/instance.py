"""The Dagster instance orchestrated mode runs on: ``dagster.yaml`` and ``workspace.yaml`` in ``runs_dir``.

The run queue holds runs back so that at most ``max_concurrent_runs`` run at once, and at most the tenant's
``concurrency_per_tenant`` runs of one tenant (runs carry the ``dativo/tenant`` tag). On your own Dagster
deployment, put the same ``concurrency`` block into its ``dagster.yaml``:
``python -m dativo_ingest.orchestrator.instance configs/runner.yaml`` prints it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from dativo_ingest.orchestrator.config import Runner, load_runner

TENANT_TAG = "dativo/tenant"
CODE_LOCATION = "dativo"
DEFINITIONS_MODULE = "dativo_ingest.orchestrator.definitions"


def concurrency_config(runner: Runner, tenants: list[str]) -> dict[str, Any]:
    """The ``concurrency`` block of ``dagster.yaml``: run queue limits, overall and per tenant."""
    limits = runner.config.concurrency_per_tenant
    if isinstance(limits, int):
        tag_limits: list[dict[str, Any]] = [
            {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": limits}]
    else:
        named = sorted(set(tenants) | {t for t in limits if t != "default"})
        tag_limits = [{"key": TENANT_TAG, "value": t, "limit": runner.tenant_limit(t)} for t in named]
    return {"runs": {"max_concurrent_runs": runner.config.max_concurrent_runs, "tag_concurrency_limits": tag_limits}}


def dagster_yaml(runner: Runner, tenants: list[str]) -> dict[str, Any]:
    return {
        "concurrency": concurrency_config(runner, tenants),
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
        # dativo's own log lines go into each run's event log
        "python_logs": {"managed_python_loggers": ["dativo_ingest"], "python_log_level": "INFO"},
    }


def workspace_yaml(runner: Runner) -> dict[str, Any]:
    return {"load_from": [{"python_module": {
        "module_name": DEFINITIONS_MODULE,
        "attribute": "defs",
        "working_directory": str(runner.project_root),
        "location_name": CODE_LOCATION,
        "executable_path": sys.executable,
    }}]}


def write_instance(runner: Runner, tenants: list[str]) -> tuple[Path, Path]:
    """Write ``dagster.yaml`` and ``workspace.yaml`` into ``runs_dir`` (Dagster's home); return their paths."""
    home = runner.runs_dir
    home.mkdir(parents=True, exist_ok=True)
    instance = home / "dagster.yaml"
    workspace = home / "workspace.yaml"
    instance.write_text(yaml.safe_dump(dagster_yaml(runner, tenants), sort_keys=False), encoding="utf-8")
    workspace.write_text(yaml.safe_dump(workspace_yaml(runner), sort_keys=False), encoding="utf-8")
    return instance, workspace


def init_storage(home: Path) -> None:
    """Create Dagster's SQLite storages in ``home`` once, before the daemon and the webserver start side by
    side: on a fresh home they race to migrate it ("alembic_version has more than one head")."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home))
    try:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_latest_materialization_events([])
    finally:
        instance.dispose()


def main(argv: list[str] | None = None) -> int:
    """Print the ``concurrency`` block for a Dagster deployment's ``dagster.yaml``."""
    args = list(sys.argv[1:] if argv is None else argv)
    from dativo_ingest.orchestrator.build import job_specs

    runner = load_runner(Path(args[0] if args else "configs/runner.yaml"))
    tenants = sorted({spec.tenant_id for spec in job_specs(runner).values()})
    sys.stdout.write(yaml.safe_dump({"concurrency": concurrency_config(runner, tenants)}, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
