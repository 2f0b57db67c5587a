"""The Typer app of the ``dativo_ingest`` command: thin — parses, calls, prints.

Exit codes: 0 ok, 1 partial (rows quarantined in warn mode), 2 failure. ``cli.main`` is the entry point: it calls
``commands.run_jobs`` itself for a ``run`` with plain arguments, and this app for everything else.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from dativo_ingest.commands import fail, run_jobs, run_startup
from dativo_ingest.errors import EXIT_FAILURE, EXIT_OK, DativoError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Config-driven ingestion into Apache Iceberg.")
state_app = typer.Typer(no_args_is_help=True, help="Inspect or reset a job's committed state.")
app.add_typer(state_app, name="state")
start_app = typer.Typer(no_args_is_help=True, help="Start a long-running mode.")
app.add_typer(start_app, name="start")
asset_app = typer.Typer(no_args_is_help=True, help="Check asset definitions (data contracts) and convert them to ODCS.")
app.add_typer(asset_app, name="asset")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="A job file.")]
JobDirOpt = Annotated[Path | None, typer.Option("--job-dir", help="Run every job of one tenant in this folder.")]
SecretsOpt = Annotated[Path | None, typer.Option("--secrets-dir", help="Folder with <tenant>/ secrets.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant-id", "--tenant",
                                               help="Tenant (default: the job's tenant_id, else its jobs/<tenant>/).")]
ModeOpt = Annotated[str, typer.Option("--mode", help="self_hosted or cloud (cloud refuses some connectors).")]
LogFormatOpt = Annotated[str | None, typer.Option("--log-format", help="json or text (default: text on a TTY).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]
RunnerConfigOpt = Annotated[Path | None, typer.Option(
    "--runner-config", help="Runner file (default $DATIVO_RUNNER_CONFIG, else configs/runner.yaml).")]


@app.command()
def run(
    config: ConfigOpt = None,
    job_dir: JobDirOpt = None,
    secrets_dir: SecretsOpt = None,
    tenant_id: TenantOpt = None,
    mode: ModeOpt = "self_hosted",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate everything, read and write nothing.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Jobs run at once with --job-dir.")] = 2,
    refresh_catalog: Annotated[bool, typer.Option(
        "--refresh-catalog", help="Singer taps: run --discover again instead of using the cached catalog.")] = False,
    runner_config: RunnerConfigOpt = None,
    log_format: LogFormatOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run one job (--config) or every job of a tenant (--job-dir, --workers at once)."""
    raise typer.Exit(run_jobs(config=config, job_dir=job_dir, secrets_dir=secrets_dir, tenant_id=tenant_id, mode=mode,
                              dry_run=dry_run, workers=workers, refresh_catalog=refresh_catalog,
                              runner_config=runner_config, log_format=log_format, debug=debug))


@app.command()
def check(
    config: ConfigOpt = None,
    job_dir: JobDirOpt = None,
    secrets_dir: SecretsOpt = None,
    tenant_id: TenantOpt = None,
    mode: ModeOpt = "self_hosted",
    log_format: LogFormatOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Validate jobs, assets, recipes, registry, secrets and infrastructure; write no data."""
    try:
        startup = run_startup(config, job_dir, secrets_dir, tenant_id, mode, log_format)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    from dativo_ingest.sinks.layout import table_identifier

    for plan in startup.plans:
        notes = "".join(f"; {note}" for note in plan.notes)
        typer.echo(f"ok: {plan.job_path} → {table_identifier(plan)} "
                   f"[engine {plan.engine}, {plan.write_mode}, {plan.validation_mode}{notes}]")


@app.command()
def validate(
    project: Annotated[Path, typer.Argument(help="The project folder (default: the current one).")] = Path("."),
    debug: DebugOpt = False,
) -> None:
    """Check every YAML of the project against its JSON Schema and model (no secrets or servers needed)."""
    try:
        from dativo_ingest.config.validate import validate_project

        report = validate_project(project)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    for line in report.problems:
        typer.echo(f"ERROR: {line}", err=True)
    typer.echo(report.summary())
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILURE)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="The project folder: new or empty (default: here).")] = Path("."),
    tenant: Annotated[str, typer.Option("--tenant-id", "--tenant", help="The demo tenant's id.")] = "acme",
    force: Annotated[bool, typer.Option("--force", help="Write into a folder that is not empty, overwriting "
                                                        "the files init writes.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Write a working project (registry, recipes, a demo asset, job and data, secrets/, configs/)."""
    try:
        from dativo_ingest.init import init_project

        result = init_project(directory, tenant=tenant, force=force)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    typer.echo(f"{result.summary()}. Run the demo job:")
    typer.echo(f"  {result.next_command}")


@app.command()
def discover(
    connector: Annotated[str, typer.Option("--connector", help="A database source: postgres, mysql or sqlite.")],
    tenant_id: Annotated[str, typer.Option("--tenant-id", "--tenant",
                                           help="Whose secrets fill the recipe's connection.")],
    secrets_dir: SecretsOpt = None,
    table: Annotated[str | None, typer.Option("--table", help="Only this table (schema.table or table).")] = None,
    emit_asset: Annotated[bool, typer.Option("--emit-asset", help="Print a draft ODCS asset for --table.")] = False,
    odcs: Annotated[bool, typer.Option("--odcs", help="With --emit-asset: canonical ODCS v3, not the flat dialect.")
                    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the asset here, not stdout.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Tables and columns as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """List a database's tables and columns, or draft the asset definition of one table."""
    try:
        from dativo_ingest.config.connection import recipe_connection
        from dativo_ingest.config.loader import find_project_root
        from dativo_ingest.engines.native.sql.discover import discover as discover_tables
        from dativo_ingest.engines.native.sql.discover import draft_asset, find_table

        if emit_asset and not table:
            raise DativoError("--emit-asset needs --table (the table to describe)")
        if odcs and not emit_asset:
            raise DativoError("--odcs goes with --emit-asset (it chooses the form of the asset written)")
        if secrets_dir is None and Path("secrets").is_dir():
            secrets_dir = Path("secrets")
        root = find_project_root(Path.cwd() / "x.yaml")
        conn = recipe_connection(connector, project_root=root, secrets_dir=secrets_dir, tenant_id=tenant_id)
        tables = discover_tables(connector, conn, project_root=root)
        if table:
            tables = [find_table(tables, table)]
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    if emit_asset:
        import yaml

        from dativo_ingest.config.odcs import canonical_yaml, write_text
        from dativo_ingest.engines.native.sql.discover import draft_contract

        try:
            text = canonical_yaml(draft_contract(tables[0], connector)) if odcs else \
                yaml.safe_dump(draft_asset(tables[0], connector), sort_keys=False, allow_unicode=True, width=120)
        except BaseException as exc:  # noqa: BLE001
            raise typer.Exit(fail(exc, debug)) from None
        if output is not None:
            write_text(output, text)
            typer.echo(f"wrote {output}", err=True)
        else:
            typer.echo(text, nl=False)
        return
    if as_json:
        typer.echo(orjson.dumps([{"table": t.name, "primary_key": t.primary_key,
                                  "columns": [c.__dict__ for c in t.columns]} for t in tables]).decode())
        return
    for t in tables:
        typer.echo(f"{t.name}  ({len(t.columns)} columns, primary key: {', '.join(t.primary_key) or 'none'})")
        width = max((len(c.name) for c in t.columns), default=0)
        for c in t.columns:
            typer.echo(f"  {c.name:<{width}}  {c.asset_type:<16} {'required' if c.required else 'nullable':<9}"
                       f"  ({c.source_type})")


@app.command("test-connector")
def test_connector(
    engine: Annotated[str, typer.Option("--engine", help="The connector's protocol: airbyte, singer or native "
                                                            "(a REST recipe).")],
    connector: Annotated[str, typer.Option("--connector", help="A name in engines/<engine>.yaml, e.g. faker.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The connector's own config (JSON/YAML).")
                      ] = None,
    streams: Annotated[str | None, typer.Option("--streams", help="Only these streams (comma-separated).")] = None,
    launcher: Annotated[str | None, typer.Option("--launcher", help="venv, docker or local.")] = None,
    executable: Annotated[str | None, typer.Option("--executable", help="Run this file (a connector being "
                                                                            "developed; implies --launcher local).")
                          ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Run a connector through its whole protocol and report what does not conform (exit 2 if anything)."""
    try:
        from dativo_ingest.config.loader import find_project_root
        from dativo_ingest.engines.base import conformance_report

        options = {k: v for k, v in {"launcher": launcher, "executable": executable}.items() if v}
        report = conformance_report(engine, connector, project_root=find_project_root(Path.cwd() / "x.yaml"),
                                    config_path=config, options=options,
                                    streams=[s.strip() for s in streams.split(",") if s.strip()] if streams else None)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    typer.echo(orjson.dumps(report.to_dict()).decode() if as_json else report.render())
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILURE)


ObjectOpt = Annotated[str | None, typer.Option(
    "--object", help="The schema object to read when the contract holds several.")]


@asset_app.command("export")
def asset_export(
    asset: Annotated[Path, typer.Argument(help="An asset file: the flat dativo dialect or canonical ODCS v3.")],
    odcs: Annotated[Path, typer.Option("--odcs", help="Write the canonical ODCS v3 contract here ('-': stdout).")],
    object_name: ObjectOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write an asset as a canonical ODCS v3 contract (dativo's keys under customProperties)."""
    try:
        from dativo_ingest.config.loader import load_asset
        from dativo_ingest.config.odcs import canonical_yaml, to_canonical, write_text

        text = canonical_yaml(to_canonical(load_asset(asset, objects=[object_name] if object_name else ()), asset))
        if str(odcs) != "-":
            write_text(odcs, text)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    if str(odcs) == "-":
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {odcs}", err=True)


@asset_app.command("validate")
def asset_validate(
    asset: Annotated[Path, typer.Argument(help="An asset file: the flat dativo dialect or canonical ODCS v3.")],
    object_name: ObjectOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check an asset file as a job would load it (canonical contracts against the official ODCS model)."""
    try:
        from dativo_ingest.config.loader import load_asset, read_yaml
        from dativo_ingest.config.odcs import describe_asset, is_canonical

        form = "canonical ODCS v3" if is_canonical(read_yaml(asset)) else "flat dativo asset"
        loaded = load_asset(asset, objects=[object_name] if object_name else ())
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    typer.echo(f"ok: {asset} ({describe_asset(loaded, form)})")


def _plan_for_state(config: Path, secrets_dir: Path | None, tenant_id: str | None) -> Any:
    startup = run_startup(config, None, secrets_dir, tenant_id, "self_hosted", "text", check_infrastructure=False)
    return startup.plans[0]


@state_app.command("show")
def state_show(
    config: Annotated[Path, typer.Option("--config", "-c", help="A job file.")],
    secrets_dir: SecretsOpt = None,
    tenant_id: TenantOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print the state envelope committed with the job's data (Iceberg snapshot or run manifest; not the mirror)."""
    try:
        from dativo_ingest.state.store import read_committed_state

        plan = _plan_for_state(config, secrets_dir, tenant_id)
        info = read_committed_state(plan)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    typer.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())


@state_app.command("reset")
def state_reset(
    config: Annotated[Path, typer.Option("--config", "-c", help="A job file.")],
    secrets_dir: SecretsOpt = None,
    tenant_id: TenantOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Forget the job's committed state: the next run reads everything again (the data stays)."""
    try:
        from dativo_ingest.sinks.layout import table_identifier
        from dativo_ingest.state.store import reset_committed_state

        plan = _plan_for_state(config, secrets_dir, tenant_id)
        if not yes and sys.stdin.isatty():
            typer.confirm(f"Reset the state of {table_identifier(plan)}?", abort=True)
        info = reset_committed_state(plan)
    except typer.Abort:
        raise
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    typer.echo(orjson.dumps(info).decode())


@start_app.command("orchestrated")
def start_orchestrated(
    runner_config: Annotated[Path, typer.Option("--runner-config", help="The runner file.")] = Path(
        "configs/runner.yaml"),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Dagster UI port on 127.0.0.1.")] = 3000,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Only the daemon (schedules run), no webserver.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Run the runner file's schedules on Dagster (daemon + UI) until Ctrl-C; stops every child process."""
    try:
        from dativo_ingest.orchestrator.service import start_orchestrated as start

        code = start(runner_config, port=port, ui=not no_ui, echo=typer.echo)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(fail(exc, debug)) from None
    raise typer.Exit(code)
