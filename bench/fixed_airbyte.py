"""The fixed cost of an Airbyte job (issue 16, "start fast"): airbyte-source-faker, ``count`` 20 users, whole
``dativo_ingest run`` processes, warm (spec, discovered catalog and state mirror in place; ``write_mode: overwrite``
so every run reads and commits the same 20 rows).

    .venv/bin/python bench/fixed_airbyte.py [--count 20] [--repeat 3] [--cli NAME=PATH ...]

Each ``--cli`` (default: this checkout's ``.venv/bin/dativo_ingest``) gets its own project and ``DATIVO_HOME``, one
warm-up run, then ``--repeat`` runs interleaved with the other commands' (both sides see the same machine). Wall
seconds and CPU seconds (the run and everything it started, the connector included) per run, with the 1-minute
load average. Nothing is asserted but the row count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DATIVO_CONNECTORS_DIR") or Path.home() / ".cache" / "dativo-ingest-tests" / "connectors")


def make_project(root: Path, count: int) -> Path:
    """A project with the faker recipe and a ``count``-user overwrite job; the job's path."""
    shutil.copytree(REPO / "registry", root / "registry")
    shutil.copytree(REPO / "connectors", root / "connectors")
    shutil.copytree(REPO / "assets" / "faker", root / "assets" / "faker")
    job = root / "jobs" / "bench" / "fixed.yaml"
    job.parent.mkdir(parents=True)
    job.write_text(json.dumps({
        "tenant_id": "bench", "source_connector": "faker", "target_connector": "iceberg",
        "target_connector_path": "connectors/targets/iceberg.yaml", "asset": "faker_users",
        "asset_path": "assets/faker/v1.0/users.yaml", "target": {"write_mode": "overwrite"},
        "source": {"objects": ["users"], "connection": {"count": count}}}))
    return job


def run_once(cli: str, root: Path, job: Path, home: Path, count: int) -> dict[str, float]:
    """One whole run: wall seconds, CPU seconds (its process tree), load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update(DATIVO_HOME=str(home), DATIVO_PROJECT_DIR=str(root), DATIVO_CONNECTORS_DIR=str(CACHE))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run([cli, "run", "--config", str(job)], cwd=root, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"{cli} run failed: {out.stderr[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["rows_written"] == count, summary
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20, help="faker users per run")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per command (after one warm-up)")
    parser.add_argument("--cli", action="append", default=[], metavar="NAME=PATH",
                        help="a dativo_ingest executable to measure (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the runs as JSON")
    args = parser.parse_args()
    clis = dict(c.split("=", 1) for c in args.cli) or {"this": str(REPO / ".venv" / "bin" / "dativo_ingest")}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in clis}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        setups = {}
        for name, cli in clis.items():
            root = tmp / name / "project"
            job = make_project(root, args.count)
            home = tmp / name / "home"
            run_once(cli, root, job, home, args.count)  # warm-up: discovers, caches, writes the mirror
            setups[name] = (cli, root, job, home)
        for i in range(args.repeat):
            for name, (cli, root, job, home) in setups.items():
                run = run_once(cli, root, job, home, args.count)
                results[name].append(run)
                print(f"run {i + 1} {name}: {run['wall_s']} s wall, {run['cpu_s']} CPU s, load {run['load_1m']}",
                      flush=True)
    for name, runs in results.items():
        walls, cpus = [r["wall_s"] for r in runs], [r["cpu_s"] for r in runs]
        print(f"{name}: wall best {min(walls):.3f} median {statistics.median(walls):.3f} s; CPU best {min(cpus):.3f} "
              f"median {statistics.median(cpus):.3f} s ({len(runs)} runs, {args.count} rows)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
