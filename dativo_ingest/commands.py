"""What ``dativo_ingest run`` does, and the helpers every command shares — without Typer.

``cli.main`` calls ``run_jobs`` directly for a ``run`` with plain arguments (``cli.plain_run_args``), so a run
imports neither Typer nor its command tree; the Typer app (``cli_app``) calls the same functions and turns the
exit code they return into ``typer.Exit``.
"""

from __future__ import annotations

import codecs
import io
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import orjson

from dativo_ingest.errors import EXIT_FAILURE, EXIT_OK, DativoError
from dativo_ingest.paths import runner_config_path

#: what ``typer.echo`` strips from text written to a stream that is not a terminal
_ANSI_STYLE = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def _writes_text_as_is(stream: Any) -> bool:
    """Whether ``typer.echo`` writes to ``stream`` itself: a text stream with an encoding (not ASCII, which it
    re-wraps as UTF-8) and an error handler, and not a Jupyter kernel's."""
    encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
    if not isinstance(stream, io.TextIOBase) or encoding is None or errors is None:
        return False
    if type(stream).__module__.startswith("ipykernel."):
        return False
    try:
        return codecs.lookup(encoding).name != "ascii"
    except LookupError:
        return True


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # noqa: BLE001 - as click: a stream that cannot tell is not a terminal
        return False


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``typer.echo(message, err=err, nl=nl)``: the text to stdout (``err``: stderr) and a flush, ANSI styles removed
    unless the stream is a terminal. A stream Typer would wrap first is left to ``typer.echo`` itself."""
    stream = sys.stderr if err else sys.stdout
    if not _writes_text_as_is(stream):
        import typer

        typer.echo(message, err=err, nl=nl)
        return
    out = f"{message}\n" if nl else message
    if out:
        stream.write(out if _isatty(stream) else _ANSI_STYLE.sub("", out))
    stream.flush()


def on_tty() -> bool:
    """Whether stderr is a terminal (progress lines and text logs then)."""
    return sys.stderr.isatty()


def json_logs(fmt: str | None) -> bool:
    """``--log-format``: json or text; by default text on a terminal."""
    if fmt is None:
        return not on_tty()
    if fmt not in ("json", "text"):
        raise DativoError(f"--log-format: unknown format '{fmt}' (use json or text)")
    return fmt == "json"


def fail(exc: BaseException, debug: bool) -> int:
    """Print ``exc`` as one ``ERROR:`` line (with ``debug``, an internal error's traceback first); its exit code."""
    from dativo_ingest.logs import redact

    if isinstance(exc, DativoError):
        echo(f"ERROR: {redact(str(exc))}", err=True)
        return exc.exit_code
    if isinstance(exc, NotImplementedError):
        echo(f"ERROR: not implemented: {redact(str(exc))}", err=True)
        return EXIT_FAILURE
    if debug:
        echo(redact(traceback.format_exc()), err=True)
    first = str(exc).splitlines()[0] if str(exc) else ""
    echo(f"ERROR: internal error: {type(exc).__name__}: {redact(first)} (rerun with --debug for the traceback)",
         err=True)
    return EXIT_FAILURE


def run_startup(config: Path | None, job_dir: Path | None, secrets_dir: Path | None, tenant_id: str | None,
                mode: str, log_format: str | None, check_infrastructure: bool = True) -> Any:
    """``startup_sequence()`` for a command's options (``secrets/`` of the current folder by default)."""
    from dativo_ingest.startup import startup_sequence

    if secrets_dir is None and Path("secrets").is_dir():
        secrets_dir = Path("secrets")
    return startup_sequence(config=config, job_dir=job_dir, secrets_dir=secrets_dir, tenant_id=tenant_id, mode=mode,
                            json_logs=json_logs(log_format), check_infrastructure=check_infrastructure)


def print_results(results: list[dict[str, Any]]) -> None:
    """One summary per job: a table on a terminal, else one JSON line each."""
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
            echo(orjson.dumps(r).decode())


def run_jobs(
    *,
    config: Path | None = None,
    job_dir: Path | None = None,
    secrets_dir: Path | None = None,
    tenant_id: str | None = None,
    mode: str = "self_hosted",
    dry_run: bool = False,
    workers: int = 2,
    refresh_catalog: bool = False,
    runner_config: Path | None = None,
    log_format: str | None = None,
    debug: bool = False,
) -> int:
    """``dativo_ingest run``: one job (``config``) or every job of a tenant (``job_dir``, ``workers`` at once); the
    exit code. The defaults are the command's (a test checks they agree)."""
    try:
        from dativo_ingest.sinks.layout import table_identifier

        startup = run_startup(config, job_dir, secrets_dir, tenant_id, mode, log_format)
        runner = None  # concurrency_per_tenant, when a runner file is there (its models are built only then)
        if runner_config is not None or runner_config_path().is_file():
            from dativo_ingest.orchestrator.config import tenant_limits

            _, runner = tenant_limits(runner_config)
        for plan in startup.plans if refresh_catalog else []:
            plan.engine_options["refresh_catalog"] = True
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return fail(exc, debug)
    if dry_run:
        for plan in startup.plans:
            echo(f"ok (dry run): {plan.job_path} → {table_identifier(plan)} "
                 f"[engine {plan.engine}, {plan.write_mode}, {plan.validation_mode}]")
        return EXIT_OK
    from dativo_ingest.run.pool import outcome_exit_code, outcome_summary, run_plans

    def report(outcome: Any) -> None:  # errors are printed as they happen
        if isinstance(outcome.error, KeyboardInterrupt):
            echo(f"ERROR: {outcome.plan.job_name}: interrupted", err=True)
        elif outcome.error is not None:
            fail(outcome.error, debug)

    outcomes = run_plans(startup.plans, workers=workers, tenant_limit=runner.tenant_limit if runner else None,
                         live=on_tty(), on_done=report)
    results = [outcome_summary(o) for o in outcomes]
    worst = max([EXIT_OK, *(outcome_exit_code(o) for o in outcomes)])
    print_results(results)
    return worst


__all__ = ["echo", "fail", "json_logs", "on_tty", "print_results", "run_jobs", "run_startup"]
