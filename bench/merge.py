#!/usr/bin/env python
"""dativo-ingest benchmark: merge by primary key into an existing Iceberg table, against pyiceberg's own ways.

Run from the repository root:

    .venv/bin/python bench/merge.py                      # 1M rows + 100k scattered changes + 10k new, int key
    .venv/bin/python bench/merge.py --cases int,composite --repeat 3
    .venv/bin/python bench/merge.py --rows 10000000 --cases int,clustered   # the 10M cases
    .venv/bin/python bench/merge.py --json out.json

Cases (``--cases``): ``int`` (id long; ``--changes`` existing keys changed at random, ``--new`` new keys),
``composite`` (key (a long, b string), same changes), ``clustered`` (the changes among the newest 5% of keys).
For each run a fresh ``DATIVO_HOME`` gets the same base table (``--rows`` rows, written by one pyiceberg append,
not timed) and the same change file (CSV; the peers read it with ``pyarrow.csv``). Then, each one subprocess
timed from start to exit (imports included), interleaved run by run:

- ``dativo_ingest``: ``dativo_ingest run`` of a CSV job with ``write_mode: merge`` on the asset's primary key;
- ``upsert``: pyiceberg ``Table.upsert(changes, join_cols=key)``;
- ``overwrite``: pyiceberg ``Table.overwrite(changes, overwrite_filter=<the changed keys>)`` (``In`` for one key
  column, pyiceberg's own match filter for a composite key).

After every run the table is checked — row count, each key once, every changed and new row's values in place
(``v = 1``), every other row untouched (``v = 0``) — before its time counts. Wall seconds (best of the runs),
CPU seconds and peak RSS are measured by bench/run.py's helpers. Goals are reported, never asserted; the exit
status is 1 only when dativo_ingest failed or left a wrong table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (bench/run.py: process measurement, report helpers)
from run import BenchError, CaseResult, Measurement  # noqa: E402

REPO_DIR = common.REPO_DIR
NAMESPACE = "bench"
TABLE = "bench_merge"
TABLE_ID = f"{NAMESPACE}.{TABLE}"
GOAL_UPSERT_RATIO = 10.0  # upsert >= 10x ours at 1M/100k
GOAL_RSS_MB = 1024.0  # peak RSS < 1 GB throughout
GOAL_CLUSTERED_RATIO = 2.0  # 10M clustered <= 2x our own 1M/100k

#: the key columns of each case kind
KEYS = {"int": ["id"], "clustered": ["id"], "composite": ["a", "b"]}
LETTERS = ["n", "e", "s", "w"]

# The base table and the change file: deterministic, built in-process (not timed).
SETUP = textwrap.dedent(
    """
    import json, os, random, sys
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    from pyiceberg.catalog.sql import SqlCatalog

    home, kind, rows, changes, new, table_id = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]), sys.argv[6]
    file_bytes = int(sys.argv[7])
    rng = random.Random(13)
    def mod(a, m):
        return pc.subtract(a, pc.multiply(pc.divide(a, m), m))
    def frame(idx, v):
        idx = pa.array(idx, pa.int64())
        cols = {}
        if kind == "composite":
            cols["a"] = pc.divide(idx, 4)
            cols["b"] = pa.array(["n", "e", "s", "w"]).take(mod(idx, 4))
        else:
            cols["id"] = idx
        cols["v"] = pa.array([v] * len(idx), pa.int64())
        cols["name"] = pc.binary_join_element_wise("customer_", mod(idx, 250000).cast(pa.string()), "")
        cols["amount"] = pc.divide(mod(idx, 100003).cast(pa.float64()), 100.0)
        return pa.table(cols)
    os.makedirs(os.path.join(home, "warehouse"), exist_ok=True)
    catalog = SqlCatalog("dativo", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    catalog.create_namespace(table_id.split(".")[0])
    base = frame(range(rows), 0)
    table = catalog.create_table(table_id, schema=base.schema,
                                 properties={"write.target-file-size-bytes": str(file_bytes)})
    # in batches, so that pyiceberg splits the table into files of the target size (one batch is one file at least)
    table.append(pa.Table.from_batches(base.to_batches(max_chunksize=250_000)))
    if kind == "clustered":  # the usual shape of updates: among the newest 5% of keys
        lo = rows - rows // 20
        changed = rng.sample(range(lo, rows), changes)
    else:
        changed = rng.sample(range(rows), changes)
    idx = sorted(changed) + list(range(rows, rows + new))
    pcsv.write_csv(frame(idx, 1), os.path.join(home, "changes.csv"))
    print(json.dumps({"rows": rows}))
    """
)

PEER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from pyiceberg.catalog.sql import SqlCatalog

    home, how, table_id, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    catalog = SqlCatalog("dativo", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    table = catalog.load_table(table_id)
    changes = pcsv.read_csv(f"{home}/changes.csv").cast(table.schema().as_arrow())
    if how == "upsert":
        table.upsert(changes, join_cols=keys)
    else:
        from pyiceberg.expressions import In
        from pyiceberg.table.upsert_util import create_match_filter
        if len(keys) == 1:
            where = In(keys[0], changes.column(keys[0]).to_pylist())
        else:
            where = create_match_filter(changes, keys)
        table.overwrite(changes, overwrite_filter=where)
    """
)


def write_project(root: Path, home: Path, kind: str) -> tuple[Path, Path]:
    """A self-contained project whose job merges ``home/changes.csv`` into ``bench.bench_merge``."""
    for rel in ("registry", "engines", "schemas", "connectors"):
        if (REPO_DIR / rel).is_dir():
            shutil.copytree(REPO_DIR / rel, root / rel, dirs_exist_ok=True)
    keys = KEYS[kind]
    columns = [(k, "long" if k in ("id", "a") else "string") for k in keys]
    columns += [("v", "long"), ("name", "string"), ("amount", "double")]
    lines = [f"  - {{name: {n}, type: {t}{', primary_key: true' if n in keys else ''}}}" for n, t in columns]
    asset = root / "assets/csv/v1.0/bench_merge.yaml"
    asset.parent.mkdir(parents=True, exist_ok=True)
    asset.write_text("apiVersion: v3.0.2\nkind: DataContract\n"
                     f"name: {TABLE}\nversion: \"1.0\"\nsource_type: csv\nobject: {TABLE}\n"
                     "schema:\n" + "\n".join(lines) + "\n")
    job = root / f"jobs/{NAMESPACE}/merge.yaml"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(f"tenant_id: {NAMESPACE}\nsource_connector: csv\n"
                   "source_connector_path: connectors/sources/csv.yaml\n"
                   "target_connector: iceberg\ntarget_connector_path: connectors/targets/iceberg.yaml\n"
                   f"asset: {TABLE}\nasset_path: assets/csv/v1.0/bench_merge.yaml\n"
                   f"source:\n  files: [{{path: {json.dumps(str(home / 'changes.csv'))}, object: {TABLE}}}]\n"
                   "target:\n  write_mode: merge\n")
    secrets = root / "secrets"
    (secrets / NAMESPACE).mkdir(parents=True, exist_ok=True)
    return job, secrets


def verify(home: Path, kind: str, rows: int, changes: int, new: int, what: str) -> int:
    """Row count, each key once, changed and new rows' values in place, the others untouched."""
    import duckdb
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("dativo", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    data = catalog.load_table(TABLE_ID).scan().to_arrow()
    keys = ", ".join(KEYS[kind])
    con = duckdb.connect(config={"threads": 2})
    con.register("t", data)
    total, distinct, ones, zeros = con.execute(
        f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {keys} FROM t)), count(*) FILTER (v = 1), "
        f"count(*) FILTER (v = 0) FROM t").fetchone()
    con.close()
    if total != rows + new:
        raise BenchError(f"{what}: the table holds {total:,} rows, expected {rows + new:,}")
    if distinct != total:
        raise BenchError(f"{what}: {total - distinct:,} keys are there more than once")
    if ones != changes + new or zeros != rows - changes:
        raise BenchError(f"{what}: {ones:,} changed/new rows (expected {changes + new:,}), {zeros:,} unchanged "
                         f"(expected {rows - changes:,})")
    return total


class Runner:
    """One measured run of one tool on a fresh copy of the case's base table."""

    def __init__(self, kind: str, rows: int, changes: int, new: int, *, file_mb: int, timeout: float,
                 keep: bool) -> None:
        self.kind, self.rows, self.changes, self.new, self.keep = kind, rows, changes, new, keep
        self.file_mb, self.timeout = file_mb, timeout

    def _setup(self, tool: str) -> Path:
        run_dir = Path(tempfile.mkdtemp(prefix=f"dativo-bench-merge-{tool}-"))
        home = run_dir / "home"
        home.mkdir()
        res = common.run_measured([sys.executable, "-c", SETUP, str(home), self.kind, str(self.rows),
                                   str(self.changes), str(self.new), TABLE_ID, str(self.file_mb << 20)],
                                  common.clean_env(home), run_dir,
                                  run_dir / "setup-logs")
        if res.returncode != 0:
            raise BenchError(common._failure_message("setup", ["setup"], res))  # noqa: SLF001
        return run_dir

    def run(self, tool: str, run: int) -> Measurement:
        run_dir = self._setup(tool)
        home = run_dir / "home"
        try:
            env = common.clean_env(home)
            if tool == "dativo_ingest":
                project = run_dir / "project"
                job, secrets = write_project(project, home, self.kind)
                cmd = [*common.cli_command(), "run", "--config", str(job), "--secrets-dir", str(secrets)]
                env["DATIVO_PROJECT_DIR"] = str(project)
                cwd = project
            else:
                cmd = [sys.executable, "-c", PEER, str(home), tool, TABLE_ID, ",".join(KEYS[self.kind])]
                cwd = run_dir
            # ``timeout`` kills a run that would take for ever (pyiceberg's composite-key filters recurse deeply)
            res = common.run_measured(["timeout", "-s", "KILL", str(self.timeout), *cmd], env, cwd, run_dir / "logs")
            if res.returncode in (124, 137, -signal.SIGKILL):
                raise BenchError(f"{tool} killed after the --timeout of {self.timeout:.0f}s")
            if res.returncode > 128:  # ``timeout`` passes on a child's death by a signal as 128 + signal
                raise BenchError(f"{tool} died of {signal.Signals(res.returncode - 128).name} after "
                                 f"{res.seconds:.0f}s\n" + common._tail(res.stderr_path, 5))  # noqa: SLF001
            if res.returncode != 0:
                raise BenchError(common._failure_message(tool, cmd[:3], res))  # noqa: SLF001
            loaded = verify(home, self.kind, self.rows, self.changes, self.new, tool)
            return common.measurement(tool, self.rows, run, res, loaded)
        finally:
            if self.keep:
                print(f"       kept {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)


def measure(case: CaseResult, runner: Runner) -> None:
    """One more run of ``case`` unless it already failed."""
    if case.error:
        return
    run = len(case.runs) + 1
    try:
        m = runner.run(case.case, run)
    except BenchError as exc:
        case.error = str(exc)
        first = str(exc).splitlines()[0]
        print(f"  {case.case:<14} run {run}: FAILED {first}")
        return
    case.runs.append(m)
    print(f"  {case.case:<14} run {run}: {m.seconds:7.2f}s  CPU {m.cpu_seconds:6.2f}s  "
          f"peak RSS {m.peak_rss_mb:6.0f} MB (ru_maxrss {m.maxrss_mb:.0f} MB)")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the base table (default 1M)")
    parser.add_argument("--changes", type=int, default=100_000, help="existing keys changed (default 100k)")
    parser.add_argument("--new", type=int, default=10_000, help="new keys (default 10k)")
    parser.add_argument("--cases", default="int", help="comma-separated: int, composite, clustered (default int)")
    parser.add_argument("--tools", default="dativo_ingest,upsert,overwrite", help="which tools to run")
    parser.add_argument("--file-mb", type=int, default=128,
                        help="the base table's write.target-file-size-bytes, in MB (default 128)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds after which a run is killed")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and case; best time counts")
    parser.add_argument("--json", type=Path, help="write machine-readable results to this file")
    parser.add_argument("--keep", action="store_true", help="keep each run's temp dir")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.cases.split(",") if k.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if bad := [k for k in kinds if k not in KEYS] + [t for t in tools if t not in ("dativo_ingest", "upsert",
                                                                                      "overwrite")]:
        parser.error(f"unknown case or tool: {', '.join(bad)}")
    print(f"dativo-ingest merge bench: python {platform.python_version()}, {os.cpu_count()} CPUs; "
          f"{args.rows:,} rows, {args.changes:,} changed, {args.new:,} new; best of {args.repeat}")
    results: dict[str, dict[str, CaseResult]] = {}
    for kind in kinds:
        print(f"\n[{kind}] key {', '.join(KEYS[kind])}")
        runner = Runner(kind, args.rows, args.changes, args.new, file_mb=args.file_mb, timeout=args.timeout,
                        keep=args.keep)
        cases = {tool: CaseResult(tool, args.rows) for tool in tools}
        for _ in range(args.repeat):  # interleaved: drift on the machine hits every tool alike
            for tool in tools:
                measure(cases[tool], runner)
        results[kind] = cases

    print(f"\n{'case':<10} {'tool':<14} {'seconds':>8} {'CPU s':>7} {'peak RSS MB':>11} {'ours vs it':>10}")
    for kind, cases in results.items():
        ours = cases.get("dativo_ingest")
        for tool, c in cases.items():
            ratio = (c.best_seconds / ours.best_seconds) if ours and ours.best_seconds and c.best_seconds else None
            shown = "failed" if c.error else fmt(c.best_seconds, "8.2f")
            print(f"{kind:<10} {tool:<14} {shown:>8} {fmt(c.best_cpu_seconds, '7.2f')} "
                  f"{fmt(c.peak_rss_mb, '11.0f')} {fmt(ratio, '9.1f') + 'x' if ratio else '-':>10}")

    goals: list[dict[str, Any]] = []
    for kind, cases in results.items():
        ours, upsert = cases.get("dativo_ingest"), cases.get("upsert")
        if ours and upsert and ours.best_seconds and upsert.best_seconds:
            ratio = upsert.best_seconds / ours.best_seconds
            goals.append({"goal": f"[{kind}] >= {GOAL_UPSERT_RATIO:.0f}x faster than pyiceberg upsert",
                          "value": f"{ratio:.1f}x", "met": ratio >= GOAL_UPSERT_RATIO})
        elif ours and upsert and ours.best_seconds and upsert.error:
            goals.append({"goal": f"[{kind}] completes where pyiceberg upsert fails", "value": "upsert failed",
                          "met": True})
        if ours and ours.peak_rss_mb is not None:
            goals.append({"goal": f"[{kind}] peak RSS < {GOAL_RSS_MB:.0f} MB", "value": f"{ours.peak_rss_mb:.0f} MB",
                          "met": ours.peak_rss_mb < GOAL_RSS_MB})
    print()
    for g in goals:
        print(f"goal: {g['goal']:<52} {g['value']:>14}  {'met' if g['met'] else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "goals": goals,
                                         "cases": {k: {t: c.to_json() for t, c in v.items()}
                                                   for k, v in results.items()}}, indent=2, default=str))
    failed = any(c.error for cases in results.values() for t, c in cases.items() if t == "dativo_ingest")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
