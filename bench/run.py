#!/usr/bin/env python
"""dativo-ingest benchmark: CSV -> Iceberg against the pyarrow + pyiceberg floor.

Run from the repository root:

    .venv/bin/python bench/run.py                 # 1M rows x3, plus one 10M-row memory run
    .venv/bin/python bench/run.py --skip-big      # only the 1M-row timing
    .venv/bin/python bench/run.py --json out.json # also write machine-readable results

Every measured case is a separate subprocess (interpreter start-up and imports included), run
into a fresh ``DATIVO_HOME``.  Wall time is the best of ``--repeat`` runs; peak RSS is the largest
sum of RSS over the process tree, sampled every 50 ms, with the kernel's ``ru_maxrss`` of that
child (``os.wait4``) as a cross-check.  Goals are reported, never asserted: the exit status is 0
when every case produced the right answer, 1 when a case failed or loaded the wrong row count.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import DLT, PeerUnavailable, ensure_venv, sling_command  # noqa: E402 - bench/ is not a package

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"

GENERATOR_VERSION = 1  # bump when the generated data changes; part of the cache key
SAMPLE_INTERVAL_S = 0.05
GOAL_TIME_RATIO = 1.2  # issue 16: ours <= 1.2x the floor at 1M rows
GOAL_BIG_TIME_RATIO = 1.0  # issue 16: ours <= the floor's wall time at 10M rows
GOAL_BIG_RSS_MB = 1024.0  # 10M-row peak RSS < 1 GB
GOAL_RSS_GROWTH = 1.5  # peak RSS 10M / 1M <= 1.5 ("roughly flat")
GOAL_FIXED_COST_RATIO = 1.1  # the 20-row demo, whole processes: start-up + one commit vs pyarrow + one append
FIXED_COST_ROWS = 20
TAIL_LINES = 40

NAMESPACE = "bench"
TABLE = "bench_rows"
TABLE_ID = f"{NAMESPACE}.{TABLE}"

# (name, asset type, DuckDB expression over r = 0..n-1). 3 long, 2 double, 3 string, 2 timestamp.
COLUMNS: list[tuple[str, str, str]] = [
    ("id", "long", "r"),
    ("a", "long", "(hash(r) % 1000000000)::BIGINT"),
    ("b", "long", "CASE WHEN r % 97 = 0 THEN NULL ELSE (r * 7) % 100003 END::BIGINT"),
    ("c", "double", "round((hash(r + 1) % 10000000) / 1000.0, 3)::DOUBLE"),
    ("d", "double", "CASE WHEN r % 89 = 0 THEN NULL ELSE round(sin(r) * 1000, 4) END::DOUBLE"),
    ("e", "string", "'user_' || (r % 250000)::VARCHAR"),
    ("f", "string", "substr(md5(r::VARCHAR), 1, 16)"),
    ("g", "string", "['alpha', 'beta', 'gamma', 'delta', 'epsilon'][(r % 5) + 1]"),
    ("h", "timestamp", "TIMESTAMP '2024-01-01' + to_microseconds(r * 1000003)"),
    (
        "i",
        "timestamp",
        "TIMESTAMP '2020-06-15 12:00:00' + to_microseconds((hash(r + 2) % 86400000000)::BIGINT * 365)",
    ),
]

# The floor: what any CSV -> Iceberg tool must at least do, in one process, imports included.
FLOOR_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from pyiceberg.catalog.sql import SqlCatalog

    csv_path, home, namespace, name = sys.argv[1:5]
    table = pacsv.read_csv(csv_path)
    schema = pa.schema([
        pa.field(f.name, pa.timestamp("us", f.type.tz), f.nullable) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ])
    table = table.cast(schema)  # pyarrow reads timestamps as ns; Iceberg wants us
    os.makedirs(os.path.join(home, "warehouse"), exist_ok=True)
    catalog = SqlCatalog("dativo", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    catalog.create_namespace(namespace)
    iceberg_table = catalog.create_table(f"{namespace}.{name}", schema=table.schema)
    iceberg_table.append(table)
    print(json.dumps({"rows": table.num_rows}))
    """
)

# Peer: dlt, filesystem destination with table_format="iceberg" (pyiceberg underneath), fed Arrow
# batches streamed from pyarrow's CSV reader.  Run by the python of its own venv (bench/peers.py).
DLT_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import dlt
    import pyarrow as pa
    import pyarrow.csv as pacsv

    csv_path, home, namespace, name = sys.argv[1:5]

    @dlt.resource(name=name, table_format="iceberg", write_disposition="append")
    def rows():
        reader = pacsv.open_csv(csv_path)
        for batch in reader:
            cols = [
                c.cast(pa.timestamp("us")) if pa.types.is_timestamp(c.type) else c for c in batch.columns
            ]
            yield pa.RecordBatch.from_arrays(cols, names=batch.schema.names)

    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=os.path.join(home, "dlt_pipelines"),
        destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.join(home, "warehouse")),
        dataset_name=namespace,
    )
    pipeline.run(rows())
    """
)


class BenchError(Exception):
    """A case did not produce a valid result (crash, missing CLI, wrong row count)."""


@dataclass
class Measurement:
    case: str
    rows: int
    run: int
    seconds: float
    peak_rss_mb: float  # sampled: max over time of the summed RSS of the process tree
    maxrss_mb: float  # kernel: ru_maxrss of the child (largest single process of the tree)
    rows_loaded: int
    cpu_seconds: float = 0.0  # kernel: user + system CPU of the child and its reaped descendants


@dataclass
class CaseResult:
    case: str
    rows: int
    runs: list[Measurement] = field(default_factory=list)
    error: str | None = None
    ratio_vs_floor: float | None = None
    goal: str | None = None  # "yes" / "no" / None (no goal for this case)
    goal_detail: str = ""

    @property
    def best_seconds(self) -> float | None:
        return min((m.seconds for m in self.runs), default=None)

    @property
    def peak_rss_mb(self) -> float | None:
        return max((m.peak_rss_mb for m in self.runs), default=None)

    @property
    def maxrss_mb(self) -> float | None:
        return max((m.maxrss_mb for m in self.runs), default=None)

    @property
    def best_cpu_seconds(self) -> float | None:
        return min((m.cpu_seconds for m in self.runs), default=None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            best_seconds=self.best_seconds,
            rows_per_second=(self.rows / self.best_seconds) if self.best_seconds else None,
            peak_rss_mb=self.peak_rss_mb,
            maxrss_mb=self.maxrss_mb,
            best_cpu_seconds=self.best_cpu_seconds,
        )
        return data


# --------------------------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------------------------


def generate_csv(rows: int) -> Path:
    """Return the cached CSV with ``rows`` rows, generating it with DuckDB if needed."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"bench_v{GENERATOR_VERSION}_{rows}.csv"
    if path.exists() and path.stat().st_size > 0:
        print(f"[gen] using cached {path} ({path.stat().st_size / 1e6:.0f} MB)")
        return path
    import duckdb

    tmp = path.with_suffix(".csv.tmp")
    select = ",\n  ".join(f"{expr} AS {name}" for name, _, expr in COLUMNS)
    sql = (
        f"COPY (SELECT\n  {select}\nFROM range({int(rows)}) t(r)) TO '{tmp}' "
        "(HEADER, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S.%f')"
    )
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute(sql)
    finally:
        con.close()
    os.replace(tmp, path)
    print(
        f"[gen] wrote {path} ({rows:,} rows, {path.stat().st_size / 1e6:.0f} MB) "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return path


# --------------------------------------------------------------------------------------------
# Measuring one subprocess
# --------------------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Sample the summed RSS of a process and all its descendants every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop_event = threading.Event()
        self.peak_bytes = 0
        self.samples = 0

    def _sample(self) -> bool:
        psutil = self._psutil
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return False
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue  # exited between listing and reading
        self.peak_bytes = max(self.peak_bytes, total)
        self.samples += 1
        return True

    def run(self) -> None:
        while not self._stop_event.is_set():
            if not self._sample():
                return
            self._stop_event.wait(self._interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _maxrss_mb(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ProcessResult:
    returncode: int
    seconds: float
    peak_rss_mb: float
    maxrss_mb: float
    stdout_path: Path
    stderr_path: Path
    cpu_seconds: float = 0.0


def run_measured(cmd: Sequence[str], env: dict[str, str], cwd: Path, log_dir: Path) -> ProcessResult:
    """Run ``cmd`` to completion; wall time, sampled tree RSS and the kernel's ru_maxrss."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "stdout.log", log_dir / "stderr.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:
            raise BenchError(f"could not start {' '.join(cmd)}: {exc}") from exc
        sampler = RssSampler(proc.pid)
        sampler.start()
        # wait4 rather than proc.wait(): it returns this child's own rusage (ru_maxrss covers the
        # child and its reaped descendants), where getrusage(RUSAGE_CHILDREN) is a running max
        # over every child this harness has ever had.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    return ProcessResult(
        returncode=proc.returncode,
        seconds=seconds,
        peak_rss_mb=sampler.peak_bytes / (1024 * 1024),
        maxrss_mb=_maxrss_mb(usage.ru_maxrss),
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )


def measurement(case: str, rows: int, run: int, res: ProcessResult, loaded: int) -> Measurement:
    return Measurement(case, rows, run, res.seconds, res.peak_rss_mb, res.maxrss_mb, loaded, res.cpu_seconds)


def _failure_message(what: str, cmd: Sequence[str], result: ProcessResult) -> str:
    parts = [f"{what} failed with exit code {result.returncode} after {result.seconds:.2f}s", "  command: "]
    parts[-1] += " ".join(cmd)
    stderr_tail, stdout_tail = _tail(result.stderr_path), _tail(result.stdout_path)
    if stderr_tail:
        parts.append(f"  --- stderr (last {TAIL_LINES} lines) ---\n" + textwrap.indent(stderr_tail, "  "))
    if stdout_tail:
        parts.append(f"  --- stdout (last {TAIL_LINES} lines) ---\n" + textwrap.indent(stdout_tail, "  "))
    return "\n".join(parts)


def clean_env(home: Path) -> dict[str, str]:
    """The caller's environment minus any DATIVO_* settings, plus a fresh DATIVO_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env["DATIVO_HOME"] = str(home)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def _record_count(table: Any) -> int:
    """Rows of an Iceberg table: the sum of its data files' record counts (metadata only, no scan)."""
    try:
        return sum(task.file.record_count for task in table.scan().plan_files())
    except Exception as exc:  # unreadable manifests are a failed run, not a harness crash
        raise BenchError(f"could not plan a scan of {table.name()}: {exc!r}") from exc


def count_iceberg_rows(home: Path) -> int:
    """Load ``bench.bench_rows`` from the embedded SqlCatalog in ``home`` and count its rows."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog_db = home / "catalog.db"
    if not catalog_db.exists():
        raise BenchError(f"no catalog at {catalog_db}: nothing was committed to the embedded catalog")
    try:
        catalog = SqlCatalog("dativo", uri=f"sqlite:///{catalog_db}", warehouse=f"file://{home}/warehouse")
        table = catalog.load_table(TABLE_ID)
    except Exception as exc:  # NoSuchTableError, a broken catalog.db, ...
        raise BenchError(f"could not load table {TABLE_ID} from {catalog_db}: {exc!r}") from exc
    names = {f.name for f in table.schema().fields}
    missing = [name for name, _, _ in COLUMNS if name not in names]
    if missing:
        raise BenchError(f"table {TABLE_ID} lacks asset columns {missing}; it has {sorted(names)}")
    return _record_count(table)


def count_static_iceberg_rows(table_dir: Path, what: str) -> int:
    """Count the rows of the Iceberg table whose newest ``*.metadata.json`` is under ``table_dir``."""
    from pyiceberg.table import StaticTable

    metadata = sorted((table_dir / "metadata").glob("*.metadata.json"))
    if not metadata:
        raise BenchError(f"{what}: no Iceberg metadata under {table_dir}")
    try:
        table = StaticTable.from_metadata(f"file://{metadata[-1]}")
    except Exception as exc:
        raise BenchError(f"{what}: could not read {metadata[-1]}: {exc!r}") from exc
    return _record_count(table)


def verify_rows(home: Path, expected: int, what: str) -> int:
    loaded = count_iceberg_rows(home)
    if loaded != expected:
        raise BenchError(f"{what}: table {TABLE_ID} holds {loaded:,} rows, expected {expected:,}")
    return loaded


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


def write_project(root: Path, csv_path: Path) -> tuple[Path, Path, list[str]]:
    """Write a self-contained dativo project under ``root``; return (job, secrets dir, missing)."""
    missing: list[str] = []
    for rel in ("registry/connectors.yaml", "connectors/sources/csv.yaml", "connectors/targets/iceberg.yaml"):
        src = REPO_DIR / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
        else:
            missing.append(rel)
    # Whatever else the CLI may resolve relative to the project root (small YAML/JSON trees).
    for rel in ("registry", "engines", "schemas"):
        if (REPO_DIR / rel).is_dir():
            shutil.copytree(REPO_DIR / rel, root / rel, dirs_exist_ok=True)

    schema_lines = []
    for name, typ, _ in COLUMNS:
        required = ", required: true" if name == "id" else ""
        schema_lines.append(f"  - {{name: {name}, type: {typ}{required}}}")
    asset = root / "assets/csv/v1.0/bench.yaml"
    asset.parent.mkdir(parents=True, exist_ok=True)
    asset.write_text(
        "$schema: schemas/odcs/dativo-odcs-3.0.2-extended.schema.json\n"
        "apiVersion: v3.0.2\n"
        "kind: DataContract\n"
        f"name: {TABLE}\n"
        'version: "1.0"\n'
        "source_type: csv\n"
        f"object: {TABLE}\n"
        "target: {file_format: parquet, mode: strict}\n"
        "schema:\n" + "\n".join(schema_lines) + "\n"
    )
    job = root / f"jobs/{NAMESPACE}/csv_bench_to_iceberg.yaml"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(
        f"tenant_id: {NAMESPACE}\n"
        "source_connector: csv\n"
        "source_connector_path: connectors/sources/csv.yaml\n"
        "target_connector: iceberg\n"
        "target_connector_path: connectors/targets/iceberg.yaml\n"
        f"asset: {TABLE}\n"
        "asset_path: assets/csv/v1.0/bench.yaml\n"
        "source:\n"
        f"  files: [{{path: {json.dumps(str(csv_path))}, object: {TABLE}}}]\n"
        "target:\n"
        "  write_mode: append\n"
    )
    secrets = root / "secrets"
    (secrets / NAMESPACE).mkdir(parents=True, exist_ok=True)
    return job, secrets, missing


def cli_command() -> list[str]:
    exe = Path(sys.executable).parent / "dativo_ingest"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "dativo_ingest"]


class Runner:
    def __init__(self, cli: list[str], keep: bool) -> None:
        self.cli = cli
        self.keep = keep
        #: the python of dlt's venv (None: dlt is not compared)
        self.dlt_python: Path | None = None

    def sling(self, csv_path: Path, rows: int, run: int) -> Measurement:
        """Sling (Go), CSV -> one Parquet file: it has no Iceberg target that runs without a catalog service."""
        run_dir = self._run_dir("sling")
        try:
            home = run_dir / "home"
            home.mkdir()
            out = run_dir / "out" / f"{TABLE}.parquet"
            out.parent.mkdir()
            cmd, env = sling_command(home)
            cmd += ["run", "--src-stream", f"file://{csv_path}", "--tgt-object", f"file://{out}"]
            res = run_measured(cmd, env, run_dir, run_dir / "logs")
            if res.returncode != 0 or not out.exists():
                said = re.sub(r"\x1b\[[0-9;]*m", "", _tail(res.stderr_path) + "\n" + _tail(res.stdout_path))
                fatal = said[said.find("fatal:"):] if "fatal:" in said else said[-600:]
                raise BenchError(f"sling exited {res.returncode}: " + " ".join(fatal.split())[:500])
            import pyarrow.dataset as ds

            loaded = ds.dataset(out, format="parquet").count_rows()
            if loaded != rows:
                raise BenchError(f"sling: its Parquet output holds {loaded:,} rows, expected {rows:,}")
            return measurement("sling", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def _run_dir(self, case: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"dativo-bench-{case}-"))

    def _finish(self, run_dir: Path) -> None:
        if self.keep:
            print(f"       kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    def floor(self, csv_path: Path, rows: int, run: int) -> Measurement:
        run_dir = self._run_dir("floor")
        try:
            home = run_dir / "home"
            home.mkdir()
            cmd = [sys.executable, "-c", FLOOR_SCRIPT, str(csv_path), str(home), NAMESPACE, TABLE]
            res = run_measured(cmd, clean_env(home), run_dir, run_dir / "logs")
            if res.returncode != 0:
                raise BenchError(_failure_message("floor (pyarrow + pyiceberg)", cmd[:2] + ["<script>"], res))
            loaded = verify_rows(home, rows, "floor")
            return measurement("floor", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def ours(self, csv_path: Path, rows: int, run: int) -> Measurement:
        run_dir = self._run_dir("ours")
        try:
            home, project = run_dir / "home", run_dir / "project"
            home.mkdir()
            job, secrets, missing = write_project(project, csv_path)
            cmd = [*self.cli, "run", "--config", str(job), "--secrets-dir", str(secrets)]
            env = clean_env(home)
            env["DATIVO_PROJECT_DIR"] = str(project)
            res = run_measured(cmd, env, project, run_dir / "logs")
            if res.returncode != 0:
                msg = _failure_message("dativo_ingest run", cmd, res)
                if missing:
                    msg += "\n  note: not in the repo yet, so not copied into the bench project: "
                    msg += ", ".join(missing)
                raise BenchError(msg)
            loaded = verify_rows(home, rows, "dativo_ingest run")
            return measurement("dativo_ingest", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def dlt(self, csv_path: Path, rows: int, run: int) -> Measurement:
        run_dir = self._run_dir("dlt")
        try:
            home = run_dir / "home"
            home.mkdir()
            cmd = [str(self.dlt_python or sys.executable), "-c", DLT_SCRIPT, str(csv_path), str(home), NAMESPACE, TABLE]
            env = clean_env(home)
            env.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
            res = run_measured(cmd, env, run_dir, run_dir / "logs")
            if res.returncode != 0:
                raise BenchError(_failure_message("dlt", cmd[:2] + ["<script>"], res))
            # dlt keeps its Iceberg catalog in memory; read the table from its newest metadata file.
            loaded = count_static_iceberg_rows(home / "warehouse" / NAMESPACE / TABLE, "dlt")
            if loaded != rows:
                raise BenchError(f"dlt: its Iceberg table holds {loaded:,} rows, expected {rows:,}")
            return measurement("dlt", rows, run, res, loaded)
        finally:
            self._finish(run_dir)


def measure_once(case: CaseResult, fn: Any, csv_path: Path) -> None:
    """Run ``fn`` once more for ``case`` unless the case already failed; record the outcome."""
    if case.error:
        return
    run = len(case.runs) + 1
    try:
        m = fn(csv_path, case.rows, run)
    except BenchError as exc:
        case.error = str(exc)
        print(f"  {case.case:<14} {case.rows:>11,} rows  run {run}: FAILED\n{textwrap.indent(str(exc), '    ')}")
        return
    case.runs.append(m)
    print(
        f"  {case.case:<14} {case.rows:>11,} rows  run {run}: {m.seconds:7.2f}s  "
        f"CPU {m.cpu_seconds:6.2f}s  peak RSS {m.peak_rss_mb:6.0f} MB (ru_maxrss {m.maxrss_mb:.0f} MB)"
    )


PEERS = ("dlt", "sling")


def ready_peers(runner: Runner, wanted: str, rows: int) -> tuple[list[tuple[CaseResult, Any]], dict[str, str]]:
    """The peers to compare (each installed into its own venv, then tried once on a tiny file), and the reason
    each of the others is skipped."""
    peers: list[tuple[CaseResult, Any]] = []
    skipped: dict[str, str] = {}
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted != "none" else []
    for name in PEERS:
        if name not in names:
            skipped[name] = "not asked for (--peers)"
            continue
        try:
            if name == "dlt":
                runner.dlt_python = ensure_venv(DLT)
            fn = runner.dlt if name == "dlt" else runner.sling
            fn(generate_csv(FIXED_COST_ROWS), FIXED_COST_ROWS, 0)  # it runs here at all
        except (PeerUnavailable, BenchError, subprocess.CalledProcessError) as exc:
            skipped[name] = " ".join(str(exc).split())[:400]
            continue
        peers.append((CaseResult(name, rows), fn))
    return peers, skipped


def human_rows(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n:,}"


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(cases: list[CaseResult]) -> None:
    header = ("case", "rows", "seconds", "rows/s", "CPU s", "peak RSS MB", "ru_maxrss MB", "ratio vs floor",
              "goal met")
    body = []
    for c in cases:
        best = c.best_seconds
        body.append(
            (
                c.case,
                f"{c.rows:,}",
                "FAILED" if c.error else _fmt(best, ".2f"),
                _fmt(c.rows / best if best else None, ",.0f"),
                _fmt(c.best_cpu_seconds, ".2f"),
                _fmt(c.peak_rss_mb, ".0f"),
                _fmt(c.maxrss_mb, ".0f"),
                _fmt(c.ratio_vs_floor, ".2f"),
                ("no (failed)" if c.error else (c.goal or "-")),
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in body:
        print(line.format(*row))


def compile_package() -> None:
    """Compile the package's modules once, as installing a wheel does: an editable install under
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile them on every run (~0.1 s), a cost the floor (whose
    libraries pip compiled) never pays and no installed copy pays either."""
    package = Path(__file__).resolve().parents[1] / "dativo_ingest"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=False)
    print(f"compiled {package} (python -m compileall), as a wheel install does")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the timing run (default 1M)")
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="rows of the memory run (default 10M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case at --rows; best time wins")
    parser.add_argument("--big-repeat", type=int, default=1, help="runs per case at --big-rows (default 1)")
    parser.add_argument("--skip-big", action="store_true", help="skip the --big-rows memory run")
    parser.add_argument("--skip-floor-big", action="store_true", help="don't run the floor at --big-rows")
    parser.add_argument("--fixed-repeat", type=int, default=5,
                        help=f"runs per case of the fixed-cost case ({FIXED_COST_ROWS} rows; 0 skips it)")
    parser.add_argument("--json", type=Path, help="write machine-readable results to this file")
    parser.add_argument("--peers", default="dlt,sling",
                        help="peers to compare at --rows, each from its own venv under bench/out/ ('none': no peer)")
    parser.add_argument(
        "--cli",
        help="command to run instead of the venv's dativo_ingest, e.g. 'python -m dativo_ingest' (shell-split)",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's temp dir (DATIVO_HOME, logs)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.big_repeat < 1 or args.rows < 1 or args.big_rows < 1:
        parser.error("--rows, --big-rows, --repeat and --big-repeat must be >= 1")
    if importlib.util.find_spec("psutil") is None:
        parser.error("psutil is required: .venv/bin/pip install psutil (it is in the 'dev' extra)")

    cli = shlex.split(args.cli) if args.cli else cli_command()
    if os.sep in cli[0]:  # the subprocess runs in the bench project dir: make a relative path absolute
        cli[0] = str(Path(cli[0]).absolute())
    runner = Runner(cli, keep=args.keep)
    print(f"dativo-ingest bench: python {platform.python_version()}, {os.cpu_count()} CPUs, cli: " + " ".join(cli))
    compile_package()
    small_csv = generate_csv(args.rows)
    big_csv = None if args.skip_big else generate_csv(args.big_rows)

    floor = CaseResult("floor", args.rows)
    ours = CaseResult("dativo_ingest", args.rows)
    peers, skipped = ready_peers(runner, args.peers, args.rows)

    print(f"\n[time] {args.rows:,} rows, best of {args.repeat} (interleaved)")
    for _ in range(args.repeat):  # interleaved, so drift on the machine hits every case alike
        measure_once(floor, runner.floor, small_csv)
        measure_once(ours, runner.ours, small_csv)
        for peer, fn in peers:
            measure_once(peer, fn, small_csv)
    for name, reason in skipped.items():
        print(f"  {name}: skipped — {reason}")

    cases = [floor, ours, *(peer for peer, _ in peers)]
    fixed_floor = fixed_ours = None
    if args.fixed_repeat > 0:  # what a small job costs: interpreter, imports, catalog, one commit
        fixed_csv = generate_csv(FIXED_COST_ROWS)
        fixed_floor, fixed_ours = CaseResult("floor", FIXED_COST_ROWS), CaseResult("dativo_ingest", FIXED_COST_ROWS)
        print(f"\n[fixed cost] {FIXED_COST_ROWS} rows, best of {args.fixed_repeat} (interleaved)")
        for _ in range(args.fixed_repeat):
            measure_once(fixed_floor, runner.floor, fixed_csv)
            measure_once(fixed_ours, runner.ours, fixed_csv)
        cases += [fixed_floor, fixed_ours]
    big_floor: CaseResult | None = None
    big_ours: CaseResult | None = None
    if big_csv is not None:
        print(f"\n[memory] {args.big_rows:,} rows, {args.big_repeat} run(s)")
        if not args.skip_floor_big:
            big_floor = CaseResult("floor", args.big_rows)
            for _ in range(args.big_repeat):
                measure_once(big_floor, runner.floor, big_csv)
            cases.append(big_floor)
        big_ours = CaseResult("dativo_ingest", args.big_rows)
        if ours.error:
            big_ours.error = "skipped: the small run already failed"
            print(f"  dativo_ingest {args.big_rows:,} rows: skipped, the {args.rows:,}-row run failed")
        else:
            for _ in range(args.big_repeat):
                measure_once(big_ours, runner.ours, big_csv)
        cases.append(big_ours)

    # Ratios and goals.
    for c in cases:
        base = big_floor if (c.rows == args.big_rows and c.rows != args.rows) else floor
        if c.rows == FIXED_COST_ROWS and c.rows != args.rows:
            base = fixed_floor
        if base is not None and base.best_seconds and c.best_seconds:
            c.ratio_vs_floor = c.best_seconds / base.best_seconds
    goals: dict[str, Any] = {}
    if ours.best_seconds and floor.best_seconds and ours.ratio_vs_floor is not None:
        met = ours.ratio_vs_floor <= GOAL_TIME_RATIO
        ours.goal = "yes" if met else "no"
        ours.goal_detail = f"time {ours.ratio_vs_floor:.2f}x floor (goal <= {GOAL_TIME_RATIO:.1f}x)"
        goals["time_ratio"] = {"value": ours.ratio_vs_floor, "goal": GOAL_TIME_RATIO, "met": met}
    if fixed_ours is not None and fixed_ours.ratio_vs_floor is not None:
        met = fixed_ours.ratio_vs_floor <= GOAL_FIXED_COST_RATIO
        fixed_ours.goal = "yes" if met else "no"
        fixed_ours.goal_detail = (f"fixed cost {fixed_ours.ratio_vs_floor:.2f}x floor "
                                  f"(goal <= {GOAL_FIXED_COST_RATIO:.1f}x)")
        goals["fixed_cost_ratio"] = {"value": fixed_ours.ratio_vs_floor, "goal": GOAL_FIXED_COST_RATIO, "met": met}
    big_time_met: bool | None = None
    if big_ours is not None and big_ours.ratio_vs_floor is not None and big_floor is not None:
        big_time_met = big_ours.ratio_vs_floor <= GOAL_BIG_TIME_RATIO
        goals["big_time_ratio"] = {"value": big_ours.ratio_vs_floor, "goal": GOAL_BIG_TIME_RATIO, "met": big_time_met}
    if big_ours is not None and big_ours.peak_rss_mb is not None:
        rss_met = big_ours.peak_rss_mb < GOAL_BIG_RSS_MB
        goals["big_peak_rss_mb"] = {"value": big_ours.peak_rss_mb, "goal": GOAL_BIG_RSS_MB, "met": rss_met}
        detail = [f"peak RSS {big_ours.peak_rss_mb:.0f} MB (goal < {GOAL_BIG_RSS_MB:.0f})"]
        growth_met = True
        if ours.peak_rss_mb:
            growth = big_ours.peak_rss_mb / ours.peak_rss_mb
            growth_met = growth <= GOAL_RSS_GROWTH
            goals["rss_growth"] = {"value": growth, "goal": GOAL_RSS_GROWTH, "met": growth_met}
            detail.append(
                f"RSS {human_rows(args.big_rows)}/{human_rows(args.rows)} {growth:.2f} (goal <= {GOAL_RSS_GROWTH})"
            )
        if big_time_met is not None:
            detail.insert(0, f"time {big_ours.ratio_vs_floor:.2f}x floor (goal <= {GOAL_BIG_TIME_RATIO:.1f}x)")
        big_ours.goal = "yes" if (rss_met and growth_met and big_time_met is not False) else "no"
        big_ours.goal_detail = ", ".join(detail)

    print("\n[results]")
    print_table(cases)
    print()
    for c in cases:
        if c.goal_detail:
            print(f"  {c.case} {c.rows:,} rows: {c.goal_detail} -> {'met' if c.goal == 'yes' else 'MISSED'}")
    for c in cases:
        if c.error:
            print(f"  {c.case} {c.rows:,} rows: FAILED - {c.error.splitlines()[0]}")
    if big_csv is None:
        print("  memory goals: not measured (--skip-big)")
    for name, reason in skipped.items():
        print(f"  peers: {name} not compared: {reason.splitlines()[0]}")
    children_maxrss = _maxrss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"  getrusage(RUSAGE_CHILDREN).ru_maxrss over all bench subprocesses: {children_maxrss:.0f} MB")

    if args.json:
        payload = {
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "cli": cli,
            "cases": [c.to_json() for c in cases],
            "goals": goals,
            "peers_skipped": skipped,
            "rusage_children_maxrss_mb": children_maxrss,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"  wrote {args.json}")

    # Goals are reported, not asserted; a failed or wrong run is not a result.
    return 1 if any(c.error for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
