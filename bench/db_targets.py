#!/usr/bin/env python
"""dativo-ingest benchmark: CSV -> PostgreSQL / MariaDB targets (``target_connector: postgres | mysql``).

Run from the repository root (the local PostgreSQL and MariaDB must be up):

    .venv/bin/python bench/db_targets.py                 # 1M rows x 10 columns, each case once
    .venv/bin/python bench/db_targets.py --rows 200000 --targets postgres

The CSV is bench/run.py's (cached in bench/out/). Each case is one ``dativo_ingest run`` subprocess timed from
start to exit (imports, CSV read and staging included) into a fresh schema ``dativo_bench_<id>``:
``append`` (an empty table), then ``merge`` twice on a table keyed by ``id`` (the first inserts every row, the
second updates every row in place), after the sink alone (``write`` + ``commit`` of the CSV as one Arrow
table). The table's row count is checked after each run; the schema is dropped at
the end. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (bench/run.py: CSV generator, process measurement)

SECRETS = {
    "postgres": "POSTGRES_HOST=127.0.0.1\nPOSTGRES_PORT=5432\nPOSTGRES_DB=test\nPOSTGRES_USER=postgres\n",
    "mysql": "MYSQL_HOST=127.0.0.1\nMYSQL_PORT=3306\nMYSQL_USER=root\n",
}


def _sql(kind: str, statement: str) -> list[tuple]:
    if kind == "postgres":
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as con:
            cur = con.execute(statement)
            return cur.fetchall() if cur.description else []
    import pymysql

    con = pymysql.connect(host="127.0.0.1", port=3306, user="root")
    try:
        with con.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        con.close()


def _job(root: Path, csv_path: Path, kind: str, schema: str, mode: str) -> Path:
    job, secrets, _ = common.write_project(root, csv_path)
    asset = root / "assets/csv/v1.0/bench.yaml"
    if mode == "merge":
        asset.write_text(asset.read_text().replace("{name: id, type: long, required: true}",
                                                   "{name: id, type: long, required: true, primary_key: true}"))
    for rel in ("connectors/targets",):
        common.shutil.copytree(common.REPO_DIR / rel, root / rel, dirs_exist_ok=True)
    text = job.read_text().replace("target_connector: iceberg", f"target_connector: {kind}")
    text = text.replace("target_connector_path: connectors/targets/iceberg.yaml",
                        f"target_connector_path: connectors/targets/{kind}.yaml")
    text = text.replace("  write_mode: append\n", f"  write_mode: {mode}\n  schema: {schema}\n")
    job.write_text(text)
    (secrets / common.NAMESPACE / f"{kind}.env").write_text(SECRETS[kind])
    return job


def _case(kind: str, mode: str, rows: int, csv_path: Path, runs: int) -> None:
    schema = f"dativo_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="dativo-dbbench-") as tmp:
        root = Path(tmp) / "project"
        job = _job(root, csv_path, kind, schema, mode)
        env = common.clean_env(Path(tmp) / "home")
        env["DATIVO_PROJECT_DIR"] = str(root)
        try:
            for run in range(1, runs + 1):
                os.utime(csv_path)  # a changed file is read again whole (file_modified_time): every row merged
                cmd = common.cli_command() + ["run", "--config", str(job), "--secrets-dir", str(root / "secrets")]
                res = common.run_measured(cmd, env, root, Path(tmp) / f"logs-{run}")
                if res.returncode != 0:
                    print(common._tail(res.stderr_path))
                    raise SystemExit(f"{kind} {mode} run {run} failed ({res.returncode})")
                q = "`" if kind == "mysql" else '"'
                count = _sql(kind, f"SELECT count(*) FROM {q}{schema}{q}.{q}{common.TABLE}{q}")[0][0]
                ok = "ok" if count == rows else f"WRONG: {count} rows"
                print(f"{kind:8} {mode:6} run {run}: {res.seconds:6.2f} s  {rows / res.seconds:>9,.0f} rows/s  "
                      f"peak RSS {res.peak_rss_mb:5.0f} MB  cpu {res.cpu_seconds:5.1f} s  table {ok}")
        finally:
            _sql(kind, f"DROP SCHEMA IF EXISTS {schema} CASCADE" if kind == "postgres"
                 else f"DROP DATABASE IF EXISTS {schema}")


def _sink_only(kind: str, csv_path: Path) -> None:
    """The sink alone: the CSV's rows as one Arrow table, ``write`` (the bulk load) then ``commit``."""
    import time

    import pyarrow as pa
    import pyarrow.csv as pcsv

    from dativo_ingest.sinks.database.mysql import Mysql
    from dativo_ingest.sinks.database.postgres import Postgres
    from dativo_ingest.sinks.database.sink import DatabaseSink

    table = pcsv.read_csv(csv_path)
    table = table.cast(pa.schema([pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
                                  for f in table.schema]))
    dialect = Postgres({"host": "127.0.0.1", "database": "test", "user": "postgres"}) if kind == "postgres" \
        else Mysql({"host": "127.0.0.1", "user": "root"})
    schema = f"dativo_bench_{uuid.uuid4().hex[:8]}"
    try:
        for mode in ("append", "merge"):
            sink = DatabaseSink(dialect, schema, mode, table.schema, tenant="bench", write_mode=mode,
                                primary_key=["id"] if mode == "merge" else [])
            sink.current_state()
            started = time.perf_counter()
            sink.write(table)
            loaded = time.perf_counter()
            sink.commit(None)
            done = time.perf_counter()
            print(f"{kind:8} {mode:6} sink only: load {loaded - started:5.2f} s + commit {done - loaded:5.2f} s "
                  f"= {table.num_rows / (done - started):>9,.0f} rows/s")
    finally:
        _sql(kind, f"DROP SCHEMA IF EXISTS {schema} CASCADE" if kind == "postgres"
             else f"DROP DATABASE IF EXISTS {schema}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--targets", nargs="+", default=["postgres", "mysql"], choices=["postgres", "mysql"])
    args = parser.parse_args()
    csv_path = common.generate_csv(args.rows)
    for kind in args.targets:
        _sink_only(kind, csv_path)
        _case(kind, "append", args.rows, csv_path, 1)
        _case(kind, "merge", args.rows, csv_path, 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
