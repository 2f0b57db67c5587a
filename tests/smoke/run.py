"""Run every job under ``jobs/`` once, against the demo tables and the stand-ins, and report one line per job.

``./tests/run_all_smoke_tests.sh [--keep] [--jobs-dir DIR] [JOB ...]``: JOB narrows the run to job files
whose path contains it. Each job runs with the CLI (``python -m dativo_ingest run --config JOB``) in a fresh
``DATIVO_HOME`` (a temporary folder, removed at the end unless ``--keep``), one after the other, so jobs that
share a table do not race; connector venvs go to ``$DATIVO_CONNECTORS_DIR``, default ``.local/connectors``
(where ``dativo_ingest run`` installs them, so they install once). A job passes when it exits 0 and writes
rows. A job no local stand-in can serve (``services.EXTERNAL``) is a SKIP line naming the variable that makes
it runnable, unless that variable is set. The last line is ``N passed, M failed`` (``, K skipped`` when some
were); the exit code is 0 only when no job failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.smoke.demo_tables import CREATORS
from tests.smoke.services import EXTERNAL, REPO, SERVICES, say

JOB_TIMEOUT_S = 1800  # a cold Airbyte or Singer connector installs first (one to three minutes)


@dataclass
class Outcome:
    job: Path
    passed: bool
    line: str
    skipped: bool = False


def job_files(jobs_dir: Path, patterns: list[str]) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` below ``jobs_dir`` (all tenants), sorted; narrowed to ``patterns`` if given."""
    found = sorted(p for p in jobs_dir.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
                   and not any(part.startswith(".") for part in p.relative_to(jobs_dir).parts))
    if patterns:
        found = [p for p in found if any(pattern in str(p) for pattern in patterns)]
    return found


def connectors_of(job: Path) -> set[str]:
    """The job's source and target connector names (empty when the file cannot be read: the run reports it)."""
    try:
        data: Any = yaml.safe_load(job.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return set()
    if not isinstance(data, dict):
        return set()
    return {str(data[k]) for k in ("source_connector", "target_connector") if data.get(k)}


def engine_of(job: Path) -> str:
    """The engine the job runs on: its ``engine``, else its source recipe's, else ``native``."""
    try:
        data: Any = yaml.safe_load(job.read_text(encoding="utf-8"))
        if data.get("engine"):
            return str(data["engine"])
        recipe: Any = yaml.safe_load((REPO / str(data.get("source_connector_path"))).read_text(encoding="utf-8"))
        return str(recipe.get("engine") or "native")
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return "native"


def external_need(job: Path) -> str | None:
    """Why the job cannot run against a stand-in (None: it can, or the variable it needs is set)."""
    for name in sorted(connectors_of(job)):
        variable, why = EXTERNAL.get((name, engine_of(job)), ("", ""))
        if variable and not os.environ.get(variable):
            return why
    return None


def create_demo_tables() -> None:
    for create in CREATORS:
        try:
            say(f"demo tables: {create()}")
        except Exception as exc:  # noqa: BLE001 - a server that is down fails only the jobs that need it
            say(f"demo tables: {create.__name__} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_") or k == "DATIVO_CONNECTORS_DIR"}
    env.setdefault("DATIVO_CONNECTORS_DIR", str(REPO / ".local" / "connectors"))
    env["DATIVO_HOME"] = str(home)
    env.pop("STATE_DIR", None)
    return env


def run_job(job: Path, env: dict[str, str]) -> Outcome:
    """``dativo_ingest run --config JOB``: PASS when it exits 0 having written rows."""
    rel = job.relative_to(REPO) if job.is_relative_to(REPO) else job
    started = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-m", "dativo_ingest", "run", "--config", str(rel), "--log-format",
                              "json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome(job, False, f"FAIL  {rel}  timed out after {JOB_TIMEOUT_S} s")
    seconds = time.monotonic() - started
    summary: dict[str, Any] = {}
    for line in reversed(out.stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            summary = json.loads(line)
            break
    if out.returncode == 0 and summary.get("rows_written", 0) > 0:
        return Outcome(job, True, f"PASS  {rel}  {summary.get('table', '?')}  {summary['rows_written']} rows  "
                                  f"{seconds:.1f} s")
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    why = errors[-1] if errors else (f"wrote no rows ({summary})" if out.returncode == 0 else
                                     (out.stderr.strip().splitlines() or ["no output"])[-1])
    return Outcome(job, False, f"FAIL  {rel}  exit {out.returncode}  {seconds:.1f} s: {why[:500]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/run_all_smoke_tests.sh", description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="only job files whose path contains JOB")
    parser.add_argument("--keep", action="store_true", help="keep the run's DATIVO_HOME (tables, state)")
    parser.add_argument("--jobs-dir", type=Path, default=REPO / "jobs", help="where the jobs are (default: jobs/)")
    args = parser.parse_args(argv)

    jobs = job_files(args.jobs_dir.resolve(), args.jobs)
    if not jobs:
        say(f"no job files under {args.jobs_dir}" + (f" matching {args.jobs}" if args.jobs else ""))
        say("0 passed, 0 failed")
        return 1
    work = Path(tempfile.mkdtemp(prefix="dativo-smoke-"))
    outcomes: list[Outcome] = []
    try:
        create_demo_tables()
        needed = {name: SERVICES[name] for job in jobs for name in sorted(connectors_of(job)) if name in SERVICES}
        with contextlib.ExitStack() as stack:
            started: dict[Any, dict[str, str]] = {}
            for stand_in in dict.fromkeys(needed.values()):
                try:
                    started[stand_in] = stack.enter_context(stand_in(work))
                except Exception as exc:  # noqa: BLE001 - its jobs fail with the reason below
                    say(f"stand-in {stand_in.__name__} did not start: {type(exc).__name__}: {exc}"[:500])
            base = _base_env(work / "home")
            for job in jobs:
                why = external_need(job)
                if why:
                    rel = job.relative_to(REPO) if job.is_relative_to(REPO) else job
                    outcomes.append(Outcome(job, False, f"SKIP  {rel}  {why}", skipped=True))
                    say(outcomes[-1].line)
                    continue
                env = dict(base)
                for name in sorted(connectors_of(job)):
                    env.update(started.get(SERVICES.get(name), {}))
                outcome = run_job(job, env)
                outcomes.append(outcome)
                say(outcome.line)
    finally:
        if args.keep:
            say(f"kept DATIVO_HOME of this run: {work / 'home'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    passed, skipped = sum(o.passed for o in outcomes), sum(o.skipped for o in outcomes)
    failed = len(outcomes) - passed - skipped
    say(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 and len(outcomes) == len(jobs) else 1
