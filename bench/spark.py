#!/usr/bin/env python
"""dativo-ingest benchmark: the same PostgreSQL -> Iceberg job on ``engine: spark`` (local[N]) and ``native``.

Run from the repository root (needs the ``spark`` extra, Java 17 and libpostgresql-jdbc-java):

    .venv/bin/python bench/spark.py                       # 1M rows x 10 columns, one run per engine
    .venv/bin/python bench/spark.py --rows 10000000       # the 10M-row table (built once, ~2 GB in PostgreSQL)
    .venv/bin/python bench/spark.py --repeat 3 --json out.json

The table and the project are bench/db.py's (``dativo_bench.rows_v1_{rows}``, 10 columns, the generated asset and
job); the spark case only swaps the job's ``engine`` for ``{name: spark, options: {spark: {master, num_partitions}}}``
(split on the primary key ``id``). Each case is one ``dativo_ingest run`` subprocess into a fresh
``DATIVO_HOME``, timed from start to exit (JVM start included), cases interleaved run by run. Memory is sampled
with psutil every 50 ms: the **driver** (our Python process alone: what holds rows on the native engine), the
**JVM** (Spark's driver and, on local[N], its executors) and the **tree** (every process: Python workers too).
The table is verified after each run (every column, exactly ``rows`` rows). See bench/README.md and the README's
section on the spark engine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import db  # noqa: E402  (bench/db.py: the generated PostgreSQL table, the project, the verification)

SAMPLE_S = 0.05


@dataclass
class Case:
    """Every run of one engine."""

    name: str
    seconds: list[float] = field(default_factory=list)
    driver_mb: list[float] = field(default_factory=list)
    jvm_mb: list[float] = field(default_factory=list)
    tree_mb: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"case": self.name, "runs": len(self.seconds), "best_s": round(min(self.seconds), 2),
                "median_s": round(statistics.median(self.seconds), 2),
                "driver_peak_mb": round(max(self.driver_mb)), "jvm_peak_mb": round(max(self.jvm_mb)),
                "tree_peak_mb": round(max(self.tree_mb))}


def spark_job(job: Path, master: str, partitions: int, driver_memory: str) -> None:
    """The generated job, on the spark engine."""
    text = job.read_text()
    engine = (f"engine:\n  name: spark\n  options:\n    spark:\n      master: '{master}'\n"
              f"      num_partitions: {partitions}\n      partition_column: id\n"
              f"      conf: {{spark.driver.memory: {driver_memory}}}\n")
    job.write_text(text.replace("engine: native\n", engine))


def run_once(case: Case, rows: int, uri: str, pg_table: str, args: argparse.Namespace) -> None:
    import psutil

    with tempfile.TemporaryDirectory(prefix=f"dativo-bench-{case.name}-") as tmp:
        root = Path(tmp)
        job, secrets = db.write_project(root / "project", pg_table, uri)
        if case.name == "spark":
            spark_job(job, args.master, args.partitions, args.driver_memory)
        home = root / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
        env.update({"DATIVO_HOME": str(home), "DATIVO_PROJECT_DIR": str(root / "project")})
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dativo_ingest", "run", "--config", str(job),
                                 "--secrets-dir", str(secrets)], cwd=root / "project", env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        driver = psutil.Process(proc.pid)
        peak_driver = peak_jvm = peak_tree = 0
        while proc.poll() is None:
            try:
                own = driver.memory_info().rss
                children = driver.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            jvm = tree = 0
            for child in children:
                try:
                    rss = child.memory_info().rss
                    tree += rss
                    jvm += rss if "java" in child.name() else 0
                except psutil.NoSuchProcess:
                    continue
            peak_driver, peak_jvm, peak_tree = max(peak_driver, own), max(peak_jvm, jvm), max(peak_tree, own + tree)
            time.sleep(SAMPLE_S)
        out, err = proc.communicate()
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"bench/spark.py: the {case.name} run failed ({proc.returncode}): "
                             f"{(err.strip().splitlines() or ['?'])[-1]}")
        db.verify_catalog(home, rows, case.name)
    case.seconds.append(seconds)
    case.driver_mb.append(peak_driver / 1e6)
    case.jvm_mb.append(peak_jvm / 1e6)
    case.tree_mb.append(peak_tree / 1e6)
    print(f"[{case.name}] {rows:,} rows in {seconds:.1f}s; peak RSS driver {peak_driver / 1e6:.0f} MB, "
          f"JVM {peak_jvm / 1e6:.0f} MB, all processes {peak_tree / 1e6:.0f} MB", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--pg-uri", default=db.DEFAULT_URI)
    parser.add_argument("--cases", default="native,spark")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    pg_table = db.ensure_table(args.pg_uri, args.rows)
    cases = [Case(name) for name in args.cases.split(",")]
    for _ in range(args.repeat):
        for case in cases:  # interleaved: drift on the machine hits every case alike
            run_once(case, args.rows, args.pg_uri, pg_table, args)
    summaries = [c.summary() for c in cases]
    print(f"\n{args.rows:,} rows, {os.cpu_count()} cores, {platform.python_version()}, master {args.master}")
    print("| case | best s | median s | driver peak MB | JVM peak MB | all processes peak MB |")
    print("|---|---|---|---|---|---|")
    for s in summaries:
        print(f"| {s['case']} | {s['best_s']} | {s['median_s']} | {s['driver_peak_mb']} | {s['jvm_peak_mb']} | "
              f"{s['tree_peak_mb']} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "master": args.master, "cases": summaries}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
