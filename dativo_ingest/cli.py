"""The ``dativo_ingest`` command: thin — parses, calls, prints.

Exit codes: 0 ok, 1 partial (rows quarantined in warn mode), 2 failure.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from dativo_ingest.errors import EXIT_FAILURE, EXIT_OK, DativoError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Config-driven ingestion into Apache Iceberg.")
state_app = typer.Typer(no_args_is_help=True, help="Inspect or reset a job's committed state.")
app.add_typer(state_app, name="state")
start_app = typer.Typer(no_args_is_help=True, help="Start a long-running mode.")
app.add_typer(start_app, name="start")
asset_app = typer.Typer(no_args_is_help=True, help="Check asset definitions (data contracts) and convert them to ODCS.")
app.add_typer(asset_app, name="asset")

log = logging.getLogger("dativo_ingest")

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


def _tty() -> bool:
    return sys.stderr.isatty()


def _json_logs(fmt: str | None) -> bool:
    if fmt is None:
        return not _tty()
    if fmt not in ("json", "text"):
        raise DativoError(f"--log-format: unknown format '{fmt}' (use json or text)")
    return fmt == "json"


def _fail(exc: BaseException, debug: bool) -> int:
    from dativo_ingest.logs import redact

    if isinstance(exc, DativoError):
        typer.echo(f"ERROR: {redact(str(exc))}", err=True)
        return exc.exit_code
    if isinstance(exc, NotImplementedError):
        typer.echo(f"ERROR: not implemented: {redact(str(exc))}", err=True)
        return EXIT_FAILURE
    if debug:
        typer.echo(redact(traceback.format_exc()), err=True)
    first = str(exc).splitlines()[0] if str(exc) else ""
    typer.echo(f"ERROR: internal error: {type(exc).__name__}: {redact(first)} (rerun with --debug for the traceback)",
               err=True)
    return EXIT_FAILURE


def _startup(config: Path | None, job_dir: Path | None, secrets_dir: Path | None, tenant_id: str | None,
             mode: str, log_format: str | None, check_infrastructure: bool = True) -> Any:
    from dativo_ingest.startup import startup_sequence

    if secrets_dir is None and Path("secrets").is_dir():
        secrets_dir = Path("secrets")
    return startup_sequence(config=config, job_dir=job_dir, secrets_dir=secrets_dir, tenant_id=tenant_id, mode=mode,
                            json_logs=_json_logs(log_format), check_infrastructure=check_infrastructure)


def _print_results(results: list[dict[str, Any]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="dativo_ingest run")
        for col in ("job", "table", "rows_read", "rows_written", "rows_quarantined", "seconds", "status"):
            table.add_column(col)
        for r in results:
            table.add_row(str(r["job"]), str(r.get("table", "")), str(r.get("rows_read", "")),
                          str(r.get("rows_written", "")), str(r.get("rows_quarantined", "")),
                          str(r.get("seconds", "")), str(r.get("status", "")))
        Console().print(table)
    else:
        for r in results:
            typer.echo(orjson.dumps(r).decode())


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
    try:
        from dativo_ingest.orchestrator.config import tenant_limits
        from dativo_ingest.sinks.layout import table_identifier

        startup = _startup(config, job_dir, secrets_dir, tenant_id, mode, log_format)
        _, runner = tenant_limits(runner_config)  # concurrency_per_tenant, when a runner file is there
        for plan in startup.plans if refresh_catalog else []:
            plan.engine_options["refresh_catalog"] = True
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        raise typer.Exit(_fail(exc, debug)) from None
    if dry_run:
        for plan in startup.plans:
            typer.echo(f"ok (dry run): {plan.job_path} → {table_identifier(plan)} "
                       f"[engine {plan.engine}, {plan.write_mode}, {plan.validation_mode}]")
        raise typer.Exit(EXIT_OK)
    from dativo_ingest.run.pool import outcome_exit_code, outcome_summary, run_plans

    def report(outcome: Any) -> None:  # errors are printed as they happen
        if isinstance(outcome.error, KeyboardInterrupt):
            typer.echo(f"ERROR: {outcome.plan.job_name}: interrupted", err=True)
        elif outcome.error is not None:
            _fail(outcome.error, debug)

    outcomes = run_plans(startup.plans, workers=workers, tenant_limit=runner.tenant_limit if runner else None,
                         live=_tty(), on_done=report)
    results = [outcome_summary(o) for o in outcomes]
    worst = max([EXIT_OK, *(outcome_exit_code(o) for o in outcomes)])
    _print_results(results)
    raise typer.Exit(worst)


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
        startup = _startup(config, job_dir, secrets_dir, tenant_id, mode, log_format)
    except BaseException as exc:  # noqa: BLE001
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
    if emit_asset:
        import yaml

        from dativo_ingest.config.odcs import canonical_yaml, write_text
        from dativo_ingest.engines.native.sql.discover import draft_contract

        try:
            text = canonical_yaml(draft_contract(tables[0], connector)) if odcs else \
                yaml.safe_dump(draft_asset(tables[0], connector), sort_keys=False, allow_unicode=True, width=120)
        except BaseException as exc:  # noqa: BLE001
            raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
    typer.echo(f"ok: {asset} ({describe_asset(loaded, form)})")


def _plan_for_state(config: Path, secrets_dir: Path | None, tenant_id: str | None) -> Any:
    startup = _startup(config, None, secrets_dir, tenant_id, "self_hosted", "text", check_infrastructure=False)
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
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
        raise typer.Exit(_fail(exc, debug)) from None
    raise typer.Exit(code)


def _exit_now(code: object) -> NoReturn:
    """End the process without the interpreter's teardown, which frees every object of every module one by one
    (~0.25 s after a run, a sixth of a small job): logging shut down, output flushed and the ``atexit``
    handlers run first, as a normal exit does. Threads still alive then are idle pool workers (a run joins its
    own), which a normal exit would only wake to end."""
    status = code if isinstance(code, int) else 0 if code is None else 1
    if not isinstance(code, int | None):
        sys.stderr.write(f"{code}\n")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    atexit._run_exitfuncs()
    os._exit(status)


#: ``run``'s options as plain_run_args reads them (option → parameter of ``run``); anything else goes to Typer
RUN_VALUE_OPTIONS = {"--config": "config", "-c": "config", "--job-dir": "job_dir", "--secrets-dir": "secrets_dir",
                     "--tenant-id": "tenant_id", "--tenant": "tenant_id", "--mode": "mode", "--workers": "workers",
                     "--runner-config": "runner_config", "--log-format": "log_format"}
RUN_FLAGS = {"--dry-run": "dry_run", "--refresh-catalog": "refresh_catalog", "--debug": "debug"}
_RUN_PATHS = frozenset({"config", "job_dir", "secrets_dir", "runner_config"})


def plain_run_args(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of ``run`` for ``run``'s command line ``args`` when they are plain — each option known,
    given once, with a value that is not empty and does not start with ``-``, ``--workers`` a positive number — else
    None: then Typer parses them (and reports what is wrong). Building Typer's command tree and its converters costs
    more than a small run's own work; for these arguments Typer would pass exactly the same values."""
    out: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in RUN_FLAGS and not eq:
            key, parsed = RUN_FLAGS[name], True
        elif name in RUN_VALUE_OPTIONS:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if not value or value.startswith("-"):
                return None
            key = RUN_VALUE_OPTIONS[name]
            parsed = Path(value) if key in _RUN_PATHS else value
            if key == "workers":
                if not (value.isascii() and value.isdigit() and value[0] != "0"):
                    return None
                parsed = int(value)
        else:
            return None
        if key in out:
            return None
        out[key] = parsed
    return out


def _completing() -> bool:
    """Whether the shell asks for completions (``_<PROG>_COMPLETE`` set): Typer answers those."""
    return any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ)


def _run_plain(kwargs: dict[str, Any]) -> NoReturn:
    """Call ``run`` as Typer's ``main`` would for plain arguments, with the same exit status (130 on Ctrl-C, 1 when
    stdout is a closed pipe)."""
    try:
        run(**kwargs)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        raise SystemExit(1) from None
    raise SystemExit(EXIT_OK)


def main() -> None:
    """The ``dativo_ingest`` command. A ``run`` ends without the interpreter's teardown (``_exit_now``); a ``run`` with
    plain arguments (``plain_run_args``) is called without building Typer's command tree."""
    os.environ.setdefault("PYICEBERG_DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE", "true")
    try:
        kwargs = plain_run_args(sys.argv[2:]) if sys.argv[1:2] == ["run"] and not _completing() else None
        if kwargs is not None:
            _run_plain(kwargs)
        app()
    except SystemExit as exc:
        if sys.argv[1:2] == ["run"]:
            _exit_now(exc.code)
        raise


if __name__ == "__main__":
    main()
