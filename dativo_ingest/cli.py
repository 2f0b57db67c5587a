"""The ``dativo_ingest`` command's entry point.

Exit codes: 0 ok, 1 partial (rows quarantined in warn mode), 2 failure.

Commands are parsed by the Typer app of ``cli_app``, except a ``run`` with plain arguments (``plain_run_args``):
that one calls ``commands.run_jobs`` directly, without importing Typer — whose command tree (every command's
parameters and a converter per option) costs more than a small run's own work.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from dativo_ingest.commands import run_jobs

#: ``run``'s options as plain_run_args reads them (option → parameter of ``run``); anything else goes to Typer
RUN_VALUE_OPTIONS = {"--config": "config", "-c": "config", "--job-dir": "job_dir", "--secrets-dir": "secrets_dir",
                     "--tenant-id": "tenant_id", "--tenant": "tenant_id", "--mode": "mode", "--workers": "workers",
                     "--runner-config": "runner_config", "--log-format": "log_format"}
RUN_FLAGS = {"--dry-run": "dry_run", "--refresh-catalog": "refresh_catalog", "--debug": "debug"}
_RUN_PATHS = frozenset({"config", "job_dir", "secrets_dir", "runner_config"})


def plain_run_args(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments of ``run`` for ``run``'s command line ``args`` when they are plain — each option known,
    given once, with a value that is not empty and does not start with ``-``, ``--workers`` a positive number — else
    None: then Typer parses them (and reports what is wrong). For these arguments Typer passes the same values."""
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
    """``run`` with plain arguments, ending as Typer's ``main`` ends it: the run's exit code, 130 on Ctrl-C, 1 when
    stdout is a closed pipe."""
    try:
        code = run_jobs(**kwargs)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        raise SystemExit(1) from None
    raise SystemExit(code)


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


def main() -> None:
    """The ``dativo_ingest`` command. A ``run`` ends without the interpreter's teardown (``_exit_now``); a ``run`` with
    plain arguments (``plain_run_args``) is called without Typer."""
    os.environ.setdefault("PYICEBERG_DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE", "true")
    try:
        kwargs = plain_run_args(sys.argv[2:]) if sys.argv[1:2] == ["run"] and not _completing() else None
        if kwargs is not None:
            _run_plain(kwargs)
        from dativo_ingest.cli_app import app

        app()
    except SystemExit as exc:
        if sys.argv[1:2] == ["run"]:
            _exit_now(exc.code)
        raise


if __name__ == "__main__":
    main()
