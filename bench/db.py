#!/usr/bin/env python
"""dativo-ingest benchmark: PostgreSQL -> Iceberg against the ADBC + pyiceberg floor and dlt.

Run from the repository root:

    .venv/bin/python bench/db.py                  # 1M rows x 10 columns, 3 interleaved runs per case
    .venv/bin/python bench/db.py --skip-dlt       # floor and ours only (no dlt venv needed)
    .venv/bin/python bench/db.py --json out.json  # also write machine-readable results

The table ``dativo_bench.rows_v{version}_{rows}`` is built once in the local PostgreSQL and reused
while it holds the right row count.  Every case is one subprocess timed from start to exit (imports
included), into a fresh ``DATIVO_HOME``: the floor (ADBC ``fetch_arrow_table`` + one pyiceberg append),
``dativo_ingest run`` on a generated job, and dlt's ``sql_database`` source (pyarrow backend) writing
Iceberg through its filesystem destination, from a venv the bench installs under bench/out/.  Peak RSS
and the ratios are measured the way bench/run.py measures them (its helpers are reused).  Goals are
reported, never asserted; the exit status is 1 only when a case failed or loaded a wrong table.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (bench/peers.py: the peers' own venvs)
import run as common  # noqa: E402  (bench/run.py: process measurement, verification, report helpers)
from run import BenchError, CaseResult, Measurement  # noqa: E402

BENCH_DIR = common.BENCH_DIR
REPO_DIR = common.REPO_DIR
OUT_DIR = common.OUT_DIR

GENERATOR_VERSION = 1  # bump when the generated table changes; part of its name
PG_SCHEMA = "dativo_bench"
DEFAULT_URI = "postgresql://postgres@127.0.0.1:5432/test"
GOAL_FLOOR_RATIO = 1.1  # issue 16: ours <= 1.1x the floor
GOAL_DLT_RATIO = 2.0  # dlt >= 2x ours

NAMESPACE = common.NAMESPACE  # "bench"
TABLE = common.TABLE  # "bench_rows"
TABLE_ID = common.TABLE_ID


# (name, PostgreSQL type, SQL over r = 1..n, asset type, Iceberg type as pyiceberg prints it)
COLUMNS: list[tuple[str, str, str, str, str]] = [
    ("id", "bigint PRIMARY KEY", "r", "long", "long"),
    ("qty", "integer", "CASE WHEN r % 97 = 0 THEN NULL ELSE ((r * 7) % 100003)::int END", "integer", "long"),
    ("amount", "numeric(12,2)", "round(((r * 7919) % 10000000) / 100.0, 2)", "decimal(12,2)", "decimal(12, 2)"),
    ("score", "double precision",
     "CASE WHEN r % 89 = 0 THEN NULL ELSE round((sin(r) * 1000)::numeric, 4)::double precision END",
     "double", "double"),
    ("name", "text", "'customer_' || (r % 250000)", "string", "string"),
    ("code", "varchar(32)", "substr(md5(r::text), 1, 16)", "string", "string"),
    ("active", "boolean", "r % 3 = 0", "boolean", "boolean"),
    ("day", "date", "DATE '2020-01-01' + (r % 2000)::int", "date", "date"),
    ("updated_at", "timestamptz", "TIMESTAMPTZ '2024-01-01 00:00:00+00' + (r * 1000003) * INTERVAL '1 microsecond'",
     "timestamptz", "timestamptz"),
    ("attrs", "jsonb",
     "jsonb_build_object('k', r % 100, 'tag', (ARRAY['alpha','beta','gamma','delta','epsilon'])[(r % 5) + 1])",
     "json", "string"),
]

# The floor: the fastest raw read into Arrow measured here (ADBC's libpq COPY-binary reader beat
# psycopg 3 COPY binary, which needs as long only to move the bytes, and connectorx) + the casts to
# the Iceberg types (numeric text -> decimal, jsonb -> string, int4 -> long) + one pyiceberg append.
FLOOR_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import pyarrow as pa
    import adbc_driver_postgresql.dbapi as pg
    from pyiceberg.catalog.sql import SqlCatalog

    uri, pg_table, home, namespace, name, casts = sys.argv[1:7]
    casts = {k: pa.decimal128(*v) if isinstance(v, list) else pa.type_for_alias(v)
             for k, v in json.loads(casts).items()}
    con = pg.connect(uri)
    with con.cursor() as cur:
        cur.execute(f"SELECT * FROM {pg_table}")
        table = cur.fetch_arrow_table()
    con.close()
    columns = []
    for f, col in zip(table.schema, table.columns):
        if hasattr(col.type, "storage_type"):  # numeric (opaque) and jsonb (arrow.json) arrive as text
            col = pa.chunked_array([c.storage for c in col.chunks], type=col.type.storage_type)
        columns.append(col.cast(casts[f.name]) if f.name in casts else col)
    table = pa.table(columns, names=table.column_names)
    os.makedirs(os.path.join(home, "warehouse"), exist_ok=True)
    catalog = SqlCatalog("dativo", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    catalog.create_namespace(namespace)
    iceberg_table = catalog.create_table(f"{namespace}.{name}", schema=table.schema)
    iceberg_table.append(table)
    print(json.dumps({"rows": table.num_rows}))
    """
)

# Peer: dlt's sql_database source with the pyarrow backend, Iceberg through the filesystem destination.
DLT_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import dlt
    from dlt.sources.sql_database import sql_database

    uri, pg_schema, pg_table, home, namespace, name = sys.argv[1:7]
    source = sql_database(credentials=uri, schema=pg_schema, table_names=[pg_table], backend="pyarrow")
    source.resources[pg_table].apply_hints(table_name=name)
    pipeline = dlt.pipeline(
        pipeline_name="bench_pg",
        pipelines_dir=os.path.join(home, "dlt_pipelines"),
        destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.join(home, "warehouse")),
        dataset_name=namespace,
    )
    print(pipeline.run(source, table_format="iceberg", write_disposition="append"))
    """
)

# Arrow types the floor casts to, so that its table has the same Iceberg types as ours.
FLOOR_CASTS = {"qty": "int64", "amount": [12, 2]}


# --------------------------------------------------------------------------------------------
# The source table
# --------------------------------------------------------------------------------------------


def pg_table_name(rows: int) -> str:
    return f"rows_v{GENERATOR_VERSION}_{rows}"


def ensure_table(uri: str, rows: int) -> str:
    """Return ``schema.table`` holding ``rows`` generated rows, building it if absent or wrong."""
    import adbc_driver_postgresql.dbapi as pg

    name = pg_table_name(rows)
    qualified = f"{PG_SCHEMA}.{name}"
    try:
        con = pg.connect(uri, autocommit=True)
    except Exception as exc:
        raise SystemExit(f"bench/db.py: cannot connect to PostgreSQL at {redact_uri(uri)}: {exc} "
                         "(start it, or pass --pg-uri)") from None
    try:
        with con.cursor() as cur:
            cur.execute(f"SELECT to_regclass('{qualified}') IS NOT NULL")
            if cur.fetchone()[0]:
                cur.execute(f"SELECT count(*) FROM {qualified}")
                have = cur.fetchone()[0]
                if have == rows:
                    print(f"[gen] using {qualified} ({rows:,} rows)")
                    return qualified
                print(f"[gen] {qualified} holds {have:,} rows, not {rows:,}: rebuilding it")
            started = time.perf_counter()
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
            cur.execute(f"DROP TABLE IF EXISTS {qualified}")
            cur.execute(f"CREATE TABLE {qualified} ({', '.join(f'{c} {t}' for c, t, _, _, _ in COLUMNS)})")
            select = ", ".join(expr for _, _, expr, _, _ in COLUMNS)
            cur.execute(f"INSERT INTO {qualified} SELECT {select} "
                        f"FROM generate_series(1::bigint, {int(rows)}::bigint) AS r")
            # Freeze: the first reader must not pay for setting hint bits, whichever case runs first.
            cur.execute(f"VACUUM (FREEZE, ANALYZE) {qualified}")
            cur.execute(f"SELECT pg_total_relation_size('{qualified}')")
            size = cur.fetchone()[0]
            print(f"[gen] built {qualified} ({rows:,} rows, {size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - started:.1f}s")
            return qualified
    finally:
        con.close()


def redact_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(f":{parts.password}@", ":***@")
    return uri


def pg_settings(uri: str) -> dict[str, str]:
    """The POSTGRES_* variables of the tenant's secrets, from the URI."""
    parts = urlsplit(uri)
    return {
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_DB": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }


# --------------------------------------------------------------------------------------------
# The dlt venv
# --------------------------------------------------------------------------------------------


def ensure_dlt_python(explicit: str | None) -> str:
    """An interpreter with dlt: ``--dlt-python``, or bench/out/venv-dlt (``peers.DLT``), installed when missing."""
    if explicit:
        return explicit
    try:
        python = peers.ensure_venv(peers.DLT)
    except peers.PeerUnavailable as exc:
        raise BenchError(str(exc)) from None
    print(f"[dlt] using {peers.DLT.path} (dlt {peers.DLT_VERSION})")
    return str(python)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def verify_table(table: Any, rows: int, what: str, *, check_types: bool) -> int:
    """The table has every column (with our Iceberg types when asked) and exactly ``rows`` rows."""
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    for name, _, _, _, iceberg_type in COLUMNS:
        if name not in types:
            raise BenchError(f"{what}: the table lacks column {name}; it has {sorted(types)}")
        if check_types and types[name] != iceberg_type:
            raise BenchError(f"{what}: column {name} is {types[name]}, expected {iceberg_type}")
    loaded = common._record_count(table)
    if loaded != rows:
        raise BenchError(f"{what}: the table holds {loaded:,} rows, expected {rows:,}")
    return loaded


def verify_catalog(home: Path, rows: int, what: str) -> int:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog_db = home / "catalog.db"
    if not catalog_db.exists():
        raise BenchError(f"{what}: no catalog at {catalog_db}: nothing was committed")
    try:
        catalog = SqlCatalog("dativo", uri=f"sqlite:///{catalog_db}", warehouse=f"file://{home}/warehouse")
        table = catalog.load_table(TABLE_ID)
    except Exception as exc:
        raise BenchError(f"{what}: could not load {TABLE_ID} from {catalog_db}: {exc!r}") from exc
    return verify_table(table, rows, what, check_types=True)


def verify_static(table_dir: Path, rows: int, what: str) -> int:
    from pyiceberg.table import StaticTable

    metadata = sorted((table_dir / "metadata").glob("*.metadata.json"))
    if not metadata:
        raise BenchError(f"{what}: no Iceberg metadata under {table_dir}")
    table = StaticTable.from_metadata(f"file://{metadata[-1]}")
    # dlt picks its own types (e.g. jsonb as string, int4 as long); only names and rows are checked.
    return verify_table(table, rows, what, check_types=False)


# --------------------------------------------------------------------------------------------
# The project for dativo_ingest
# --------------------------------------------------------------------------------------------


def write_project(root: Path, pg_table: str, uri: str) -> tuple[Path, Path]:
    """A self-contained project: repo registry + recipes, a generated asset, job and tenant secrets."""
    for rel in ("registry", "connectors", "schemas"):
        if (REPO_DIR / rel).is_dir():
            shutil.copytree(REPO_DIR / rel, root / rel, dirs_exist_ok=True)
    schema_lines = []
    for name, _, _, asset_type, _ in COLUMNS:
        required = ", required: true" if name == "id" else ""
        schema_lines.append(f"  - {{name: {name}, type: '{asset_type}'{required}}}")
    asset = root / "assets/postgres/v1.0/bench.yaml"
    asset.parent.mkdir(parents=True, exist_ok=True)
    asset.write_text(
        "$schema: schemas/odcs/dativo-odcs-3.0.2-extended.schema.json\n"
        "apiVersion: v3.0.2\n"
        "kind: DataContract\n"
        f"name: {TABLE}\n"
        'version: "1.0"\n'
        "source_type: postgres\n"
        f"object: {TABLE}\n"
        "target: {file_format: parquet, mode: strict}\n"
        "schema:\n" + "\n".join(schema_lines) + "\n"
    )
    job = root / f"jobs/{NAMESPACE}/postgres_bench_to_iceberg.yaml"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(
        f"tenant_id: {NAMESPACE}\n"
        "source_connector: postgres\n"
        "source_connector_path: connectors/sources/postgres.yaml\n"
        "engine: native\n"
        "target_connector: iceberg\n"
        "target_connector_path: connectors/targets/iceberg.yaml\n"
        f"asset: {TABLE}\n"
        "asset_path: assets/postgres/v1.0/bench.yaml\n"
        "source:\n"
        f"  tables: [{{name: {pg_table}, object: {TABLE}}}]\n"
        "target:\n"
        "  write_mode: append\n"
    )
    secrets = root / "secrets"
    (secrets / NAMESPACE).mkdir(parents=True, exist_ok=True)
    env_lines = [f"{k}={v}" for k, v in pg_settings(uri).items() if v]
    (secrets / NAMESPACE / "postgres.env").write_text("\n".join(env_lines) + "\n")
    return job, secrets


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


class Runner:
    def __init__(self, cli: list[str], uri: str, pg_table: str, keep: bool) -> None:
        self.cli = cli
        self.uri = uri
        self.pg_table = pg_table
        self.keep = keep
        self.dlt_python: str | None = None

    def _run_dir(self, case: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"dativo-bench-pg-{case}-"))

    def _finish(self, run_dir: Path) -> None:
        if self.keep:
            print(f"       kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)

    def floor(self, rows: int, run: int) -> Measurement:
        run_dir = self._run_dir("floor")
        try:
            home = run_dir / "home"
            home.mkdir()
            cmd = [sys.executable, "-c", FLOOR_SCRIPT, self.uri, self.pg_table, str(home), NAMESPACE, TABLE,
                   json.dumps(FLOOR_CASTS)]
            res = common.run_measured(cmd, common.clean_env(home), run_dir, run_dir / "logs")
            if res.returncode != 0:
                raise BenchError(common._failure_message("floor (ADBC + pyiceberg)", cmd[:2] + ["<script>"], res))
            loaded = verify_catalog(home, rows, "floor")
            return common.measurement("floor", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def ours_command(self, job: Path, secrets: Path) -> list[str]:
        return [*self.cli, "run", "--config", str(job), "--secrets-dir", str(secrets)]

    def ours(self, rows: int, run: int) -> Measurement:
        run_dir = self._run_dir("ours")
        try:
            home, project = run_dir / "home", run_dir / "project"
            home.mkdir()
            job, secrets = write_project(project, self.pg_table, self.uri)
            cmd = self.ours_command(job, secrets)
            env = common.clean_env(home)
            env["DATIVO_PROJECT_DIR"] = str(project)
            res = common.run_measured(cmd, env, project, run_dir / "logs")
            if res.returncode != 0:
                raise BenchError(common._failure_message("dativo_ingest run", cmd, res))
            loaded = verify_catalog(home, rows, "dativo_ingest run")
            return common.measurement("dativo_ingest", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def dlt(self, rows: int, run: int) -> Measurement:
        if self.dlt_python is None:
            raise BenchError("dlt: no interpreter")
        run_dir = self._run_dir("dlt")
        try:
            home = run_dir / "home"
            home.mkdir()
            uri = self.uri.replace("postgresql://", "postgresql+psycopg2://", 1)
            schema, _, table = self.pg_table.partition(".")
            cmd = [self.dlt_python, "-c", DLT_SCRIPT, uri, schema, table, str(home), NAMESPACE, TABLE]
            env = common.clean_env(home)
            env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
            res = common.run_measured(cmd, env, run_dir, run_dir / "logs")
            if res.returncode != 0:
                raise BenchError(common._failure_message("dlt", cmd[:2] + ["<script>"], res))
            # dlt keeps its Iceberg catalog in memory; the table is read from its newest metadata file.
            loaded = verify_static(home / "warehouse" / NAMESPACE / TABLE, rows, "dlt")
            return common.measurement("dlt", rows, run, res, loaded)
        finally:
            self._finish(run_dir)

    def phases(self, runs: int) -> list[str]:
        """Runs of ours under bench/phases.py (wall-clock timers around each phase); their reports."""
        reports = []
        for run in range(1, runs + 1):
            run_dir = self._run_dir("phases")
            try:
                home, project = run_dir / "home", run_dir / "project"
                home.mkdir()
                job, secrets = write_project(project, self.pg_table, self.uri)
                cmd = [sys.executable, str(BENCH_DIR / "phases.py"), "run", "--config", str(job),
                       "--secrets-dir", str(secrets)]
                env = common.clean_env(home)
                env["DATIVO_PROJECT_DIR"] = str(project)
                res = common.run_measured(cmd, env, project, run_dir / "logs")
                if res.returncode != 0:
                    raise BenchError(common._failure_message("dativo_ingest run (bench/phases.py)", cmd, res))
                text = res.stderr_path.read_text(errors="replace")
                report = text[text.rindex("[phases]"):].rstrip() if "[phases]" in text else "(no report)"
                reports.append(f"run {run}: process {res.seconds:.2f}s, CPU {res.cpu_seconds:.2f}s\n{report}")
            finally:
                self._finish(run_dir)
        return reports


def measure_once(case: CaseResult, fn: Any) -> None:
    if case.error:
        return
    run = len(case.runs) + 1
    try:
        m = fn(case.rows, run)
    except BenchError as exc:
        case.error = str(exc)
        print(f"  {case.case:<14} {case.rows:>11,} rows  run {run}: FAILED\n{textwrap.indent(str(exc), '    ')}")
        return
    case.runs.append(m)
    print(
        f"  {case.case:<14} {case.rows:>11,} rows  run {run}: {m.seconds:7.2f}s  "
        f"CPU {m.cpu_seconds:6.2f}s  peak RSS {m.peak_rss_mb:6.0f} MB (ru_maxrss {m.maxrss_mb:.0f} MB)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the source table (default 1M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best time counts")
    parser.add_argument("--pg-uri", default=os.environ.get("BENCH_PG_URI", DEFAULT_URI),
                        help=f"PostgreSQL to read (default {DEFAULT_URI}, or $BENCH_PG_URI)")
    parser.add_argument("--skip-dlt", action="store_true", help="do not install or run dlt")
    parser.add_argument("--dlt-python", help="an interpreter that has dlt (default: bench/out/venv-dlt, installed)")
    parser.add_argument("--phases", type=int, default=0, metavar="N",
                        help="afterwards, N runs of ours with a wall-clock breakdown by phase (bench/phases.py)")
    parser.add_argument("--json", type=Path, help="write machine-readable results to this file")
    parser.add_argument("--cli", help="command instead of the venv's dativo_ingest, e.g. 'python -m dativo_ingest'")
    parser.add_argument("--keep", action="store_true", help="keep each run's temp dir (DATIVO_HOME, logs)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.rows < 1:
        parser.error("--rows and --repeat must be >= 1")
    if importlib.util.find_spec("psutil") is None:
        parser.error("psutil is required: .venv/bin/pip install psutil (it is in the 'dev' extra)")

    cli = shlex.split(args.cli) if args.cli else common.cli_command()
    if os.sep in cli[0]:
        cli[0] = str(Path(cli[0]).absolute())
    print(f"dativo-ingest bench (PostgreSQL): python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"cli: {' '.join(cli)}, source: {redact_uri(args.pg_uri)}")
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} (other work on the machine slows every case; CPU seconds less so)")
    pg_table = ensure_table(args.pg_uri, args.rows)
    runner = Runner(cli, args.pg_uri, pg_table, keep=args.keep)

    floor = CaseResult("floor", args.rows)
    ours = CaseResult("dativo_ingest", args.rows)
    dlt = CaseResult("dlt", args.rows)
    cases = [floor, ours]
    if not args.skip_dlt:
        cases.append(dlt)
        try:
            runner.dlt_python = ensure_dlt_python(args.dlt_python)
        except BenchError as exc:
            dlt.error = str(exc)
            print(f"  dlt: FAILED\n{textwrap.indent(str(exc), '    ')}")

    print(f"\n[time] {args.rows:,} rows from {pg_table}, best of {args.repeat} (interleaved)")
    for _ in range(args.repeat):  # interleaved, so drift on the machine hits every case alike
        measure_once(floor, runner.floor)
        measure_once(ours, runner.ours)
        if not args.skip_dlt:
            measure_once(dlt, runner.dlt)

    goals: dict[str, Any] = {}
    for c in cases:
        if floor.best_seconds and c.best_seconds:
            c.ratio_vs_floor = c.best_seconds / floor.best_seconds
    if ours.ratio_vs_floor is not None:
        met = ours.ratio_vs_floor <= GOAL_FLOOR_RATIO
        ours.goal = "yes" if met else "no"
        ours.goal_detail = f"{ours.ratio_vs_floor:.2f}x the floor (goal <= {GOAL_FLOOR_RATIO:.1f}x)"
        goals["ours_vs_floor"] = {"value": ours.ratio_vs_floor, "goal": GOAL_FLOOR_RATIO, "met": met}
    if dlt.best_seconds and ours.best_seconds:
        ratio = dlt.best_seconds / ours.best_seconds
        met = ratio >= GOAL_DLT_RATIO
        dlt.goal = "yes" if met else "no"
        dlt.goal_detail = f"dlt / ours = {ratio:.2f} (goal >= {GOAL_DLT_RATIO:.1f}: ours at least 2x faster)"
        goals["dlt_vs_ours"] = {"value": ratio, "goal": GOAL_DLT_RATIO, "met": met}

    cpu = {c.case: c.best_cpu_seconds for c in cases if c.best_cpu_seconds}
    if cpu.get("floor") and cpu.get("dativo_ingest"):
        goals["cpu_ours_vs_floor"] = {"value": cpu["dativo_ingest"] / cpu["floor"], "goal": None}
    if cpu.get("dlt") and cpu.get("dativo_ingest"):
        goals["cpu_dlt_vs_ours"] = {"value": cpu["dlt"] / cpu["dativo_ingest"], "goal": None}

    print("\n[results]")
    common.print_table(cases)
    print()
    for c in cases:
        if c.goal_detail:
            print(f"  {c.case}: {c.goal_detail} -> {'met' if c.goal == 'yes' else 'MISSED'}")
    if "cpu_ours_vs_floor" in goals:  # CPU time is the steadier figure on a loaded machine
        line = f"  CPU seconds (cross-check): ours / floor = {goals['cpu_ours_vs_floor']['value']:.2f}"
        if "cpu_dlt_vs_ours" in goals:
            line += f", dlt / ours = {goals['cpu_dlt_vs_ours']['value']:.2f}"
        print(line)
    for c in cases:
        if c.error:
            print(f"  {c.case}: FAILED - {c.error.splitlines()[0]}")
    if args.skip_dlt:
        print("  dlt: skipped (--skip-dlt)")
    load_after = os.getloadavg()
    print(f"  load average: {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    children_maxrss = common._maxrss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"  getrusage(RUSAGE_CHILDREN).ru_maxrss over all bench subprocesses: {children_maxrss:.0f} MB")

    phase_reports: list[str] = []
    if args.phases and not ours.error:
        print(f"\n[phases] {args.phases} run(s) of dativo_ingest under bench/phases.py")
        try:
            phase_reports = runner.phases(args.phases)
        except BenchError as exc:
            print(f"  phases: FAILED\n{textwrap.indent(str(exc), '    ')}")
        for report in phase_reports:
            print(textwrap.indent(report, "  "))

    if args.json:
        payload = {
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "loadavg_before": load_before[0], "loadavg_after": load_after[0]},
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "pg_uri"},
            "source": {"uri": redact_uri(args.pg_uri), "table": pg_table},
            "cli": cli,
            "dlt": ({"requirements": list(peers.DLT.requirements), "python": runner.dlt_python}
                    if not args.skip_dlt else None),
            "cases": [c.to_json() for c in cases],
            "goals": goals,
            "phases": phase_reports,
            "rusage_children_maxrss_mb": children_maxrss,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"  wrote {args.json}")
    return 1 if any(c.error for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
