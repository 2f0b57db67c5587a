"""Singer engine benchmarks (issue #5), one command from the repository root:

    .venv/bin/python bench/singer.py [--records 1000000] [--live-rows 100000] [--repeat 3] [--json FILE]

(a) replay: a recorded Singer stream (one SCHEMA, ``--records`` RECORD lines of 8 flat columns in the SDK's
    compact layout, a STATE every 100 000 records and at the end; generated once into bench/out/) replayed
    by a ``local`` tap (a shell script that ``cat``s the file) through ``dativo_ingest run`` into Iceberg:
    records/s end to end and CPU seconds (ours + the tap's). Goal ≥ 300k records/s.
(b) live: meltanolabs-tap-postgres reading ``--live-rows`` rows of PostgreSQL (schema ``bench_singer``,
    127.0.0.1:5432, db ``test``), full table: the tap alone writing to /dev/null against ours end to end
    (a warm run: catalog cached), in the same run. Goal (issue 16): ours ≥ 0.95 of its rate.

Wall is the best of ``--repeat`` runs; CPU seconds and ru_maxrss (the largest single process of the tree)
come from ``os.wait4`` of that run. The load average is printed with each result: the machine is shared.
Goals are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
CACHE = Path(os.environ.get("DATIVO_CONNECTORS_DIR") or Path.home() / ".cache" / "dativo-ingest-tests" / "connectors")
TAP_POSTGRES = ("meltanolabs-tap-postgres==0.10.0", "tap-postgres")
PG_URI = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bench_singer"
STATE_EVERY = 100_000
GENERATOR = 1

SCHEMA = {"type": "object", "properties": {
    "id": {"type": ["integer"]},
    "name": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]},
    "amount": {"type": ["number", "null"]},
    "quantity": {"type": ["integer", "null"]},
    "active": {"type": ["boolean", "null"]},
    "note": {"type": ["string", "null"]},
    "updated_at": {"type": ["string"], "format": "date-time"}}}
ASSET_FIELDS = [("id", "long"), ("name", "string"), ("email", "string"), ("amount", "double"),
                ("quantity", "long"), ("active", "boolean"), ("note", "string"), ("updated_at", "timestamptz")]


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    maxrss_mb: float
    load: float


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            stdout: int | None = subprocess.PIPE) -> tuple[Run, str]:
    """Run ``cmd`` to completion: wall, CPU (user + system, reaped descendants included), ru_maxrss."""
    load = load_average()
    started = time.monotonic()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out if stdout == subprocess.PIPE else stdout,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {errors[-2000:]}")
    return Run(round(seconds, 3), round(usage.ru_utime + usage.ru_stime, 2), round(usage.ru_maxrss / 1024),
               load), text


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


# -- (a) replay ------------------------------------------------------------------------------------------


def recording(records: int) -> Path:
    """The recorded stream (generated in a child process: ru_maxrss of later children starts at our RSS)."""
    path = OUT / f"singer_v{GENERATOR}_{records}.jsonl"
    if not path.is_file():
        subprocess.run([sys.executable, __file__, "--generate", str(records)], check=True)
    return path


def generate(records: int) -> Path:
    """The recorded stream: SCHEMA, ``records`` RECORD lines, a STATE every 100 000 records and at the end."""
    path = OUT / f"singer_v{GENERATOR}_{records}.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson"]
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps({"type": "SCHEMA", "stream": "events", "schema": SCHEMA, "key_properties": ["id"],
                               "bookmark_properties": ["updated_at"]}) + b"\n")
        chunk: list[bytes] = []
        for i in range(1, records + 1):
            stamp = (f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}"
                     f".{i % 1000:03d}000+00:00")
            record = {"id": i, "name": names[i % len(names)], "email": f"user{i}@example.com",
                      "amount": round(i * 0.37 % 10_000, 2), "quantity": i % 97, "active": i % 3 == 0,
                      "note": None if i % 5 == 0 else f"note number {i} for the bench", "updated_at": stamp}
            chunk.append(orjson.dumps({"type": "RECORD", "stream": "events", "record": record,
                                       "time_extracted": "2024-06-01T00:00:00+00:00"}))
            if i % STATE_EVERY == 0 or i == records:
                chunk.append(orjson.dumps({"type": "STATE", "value": {"bookmarks": {"events": {
                    "replication_key": "updated_at", "replication_key_value": stamp}}}}))
                fh.write(b"\n".join(chunk) + b"\n")
                chunk = []
    tmp.replace(path)
    return path


REPLAY = """#!/bin/sh
for a in "$@"; do
  case "$a" in
    --discover) cat "%(discover)s"; exit 0 ;;
  esac
done
exec cat "%(records)s"
"""


def project(tmp: Path) -> Path:
    root = tmp / "project"
    if not root.exists():
        shutil.copytree(REPO / "registry", root / "registry")
        shutil.copytree(REPO / "connectors", root / "connectors")
    return root


def write_json(path: Path, data: dict) -> Path:  # JSON is YAML
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def dativo_run(root: Path, job: Path, home: Path) -> tuple[Run, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update(DATIVO_HOME=str(home), DATIVO_PROJECT_DIR=str(root), DATIVO_CONNECTORS_DIR=str(CACHE))
    run, out = measure([str(REPO / ".venv" / "bin" / "dativo_ingest"), "run", "--config", str(job)], env=env,
                       cwd=root)
    return run, json.loads(out.strip().splitlines()[-1])


def bench_replay(records: int, repeat: int) -> dict:
    path = recording(records)
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = project(tmp)
        discover = write_json(tmp / "discover.json", {"streams": [{
            "tap_stream_id": "events", "stream": "events", "schema": SCHEMA, "key_properties": ["id"],
            "metadata": [{"breadcrumb": [], "metadata": {"inclusion": "available", "table-key-properties": ["id"],
                                                         "valid-replication-keys": ["updated_at"]}}]}]})
        script = root / "taps" / "tap-replay"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(REPLAY % {"discover": discover, "records": path})
        script.chmod(0o755)
        write_json(root / "assets/bench/v1.0/events.yaml", {
            "apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0",
            "object": "events", "schema": [{"name": n, "type": t} for n, t in ASSET_FIELDS]})
        job = write_json(root / "jobs/bench/singer_replay.yaml", {
            "tenant_id": "bench", "source_connector": "singer_tap", "target_connector": "iceberg",
            "asset_path": "assets/bench/v1.0/events.yaml",
            "extractor": {"name": "tap-replay", "executable": "taps/tap-replay",
                          "capabilities": ["catalog", "discover", "state"], "config": {}}})
        for i in range(repeat):
            run, summary = dativo_run(root, job, tmp / f"home{i}")
            assert summary["rows_written"] == records, summary
            runs.append(run)
            print(f"  replay run {i + 1}: {run}", flush=True)
    b = best(runs)
    return {"records": records, "bytes": path.stat().st_size, "seconds": b.seconds,
            "records_per_s": round(records / b.seconds), "cpu_seconds": b.cpu_seconds,
            "cpu_records_per_s": round(records / b.cpu_seconds), "maxrss_mb": b.maxrss_mb, "load": b.load,
            "goal_records_per_s": 300_000, "runs": [asdict(r) for r in runs]}


# -- (b) live tap-postgres -------------------------------------------------------------------------------


def tap_postgres() -> Path:
    sys.path.insert(0, str(REPO))
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    launcher = VenvLauncher(*TAP_POSTGRES, root=CACHE)
    launcher.ensure_ready()
    return launcher.executable_path()


def pg_table(rows: int) -> None:
    import psycopg

    with psycopg.connect(PG_URI, autocommit=True) as conn:
        have = conn.execute("SELECT to_regclass(%s)", (f"{PG_SCHEMA}.events",)).fetchone()[0]
        if have is not None and conn.execute(f"SELECT count(*) FROM {PG_SCHEMA}.events").fetchone()[0] == rows:
            return
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        conn.execute(f"""CREATE TABLE {PG_SCHEMA}.events (id bigint PRIMARY KEY, name text, email text,
            amount double precision, quantity bigint, active boolean, note text, updated_at timestamptz NOT NULL)""")
        conn.execute(f"""INSERT INTO {PG_SCHEMA}.events SELECT g, 'name ' || (g % 1000), 'user' || g || '@example.com',
            (g * 0.37)::numeric(12,2)::float8, g % 97, g % 3 = 0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END,
            timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, {int(rows)}) g""")
        conn.execute(f"ANALYZE {PG_SCHEMA}.events")


def bench_live(rows: int, repeat: int) -> dict:
    sys.path.insert(0, str(REPO))
    from dativo_ingest.engines.singer.catalog import Selection, select_streams

    pg_table(rows)
    exe = tap_postgres()
    config = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "database": "test",
              "filter_schemas": [PG_SCHEMA]}
    alone, ours = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config_path = write_json(tmp / "config.json", config)
        discovered = subprocess.run([str(exe), "--config", str(config_path), "--discover"], capture_output=True,
                                    check=True).stdout
        catalog = select_streams(orjson.loads(discovered), [Selection(f"{PG_SCHEMA}-events",
                                                                      [n for n, _ in ASSET_FIELDS])],
                                 legacy_schema_flags=False)
        catalog_path = write_json(tmp / "catalog.json", catalog)
        root = project(tmp)
        write_json(root / "assets/bench/v1.0/pg_events.yaml", {
            "apiVersion": "v3.0.2", "kind": "DataContract", "name": "pg_events", "version": "1.0",
            "object": "events", "schema": [{"name": n, "type": t} for n, t in ASSET_FIELDS]})
        job = write_json(root / "jobs/bench/singer_postgres.yaml", {
            "tenant_id": "bench", "source_connector": "postgres", "target_connector": "iceberg",
            "target_connector_path": "connectors/targets/iceberg.yaml", "engine": "meltano",
            "asset_path": "assets/bench/v1.0/pg_events.yaml", "target": {"write_mode": "overwrite"},
            "source": {"connection": {"host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres",
                                                  "password": ""},
                       "tables": [{"name": f"{PG_SCHEMA}.events", "object": "events"}]}})
        first, summary = dativo_run(root, job, tmp / "home")  # discovers, fills the catalog cache
        assert summary["rows_written"] == rows, summary
        print(f"  live first run (discovers): {first}", flush=True)
        for i in range(repeat):  # interleaved: both sides see the same machine
            run, _ = measure([str(exe), "--config", str(config_path), "--catalog", str(catalog_path)],
                             stdout=subprocess.DEVNULL)
            alone.append(run)
            run, summary = dativo_run(root, job, tmp / "home")
            assert summary["rows_written"] == rows, summary
            ours.append(run)
            print(f"  live run {i + 1}: tap alone {alone[-1]}  ours {ours[-1]}", flush=True)
    a, o = best(alone), best(ours)
    return {"rows": rows, "tap_alone_s": a.seconds, "tap_alone_cpu_s": a.cpu_seconds, "ours_s": o.seconds,
            "ours_cpu_s": o.cpu_seconds, "ours_maxrss_mb": o.maxrss_mb, "ours_first_run_s": first.seconds,
            "tap_rate": round(rows / a.seconds), "our_rate": round(rows / o.seconds),
            "ratio_of_its_rate": round(a.seconds / o.seconds, 3), "goal_ratio": 0.95, "load": o.load,
            "runs": {"alone": [asdict(r) for r in alone], "ours": [asdict(r) for r in ours]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="RECORD lines of the replay (a)")
    parser.add_argument("--live-rows", type=int, default=100_000, help="PostgreSQL rows of the live run (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best wall time counts")
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate)
        return
    results: dict[str, dict] = {}
    if not args.skip_replay:
        r = results["replay"] = bench_replay(args.records, args.repeat)
        print(f"(a) replay: {r['records']} records in {r['seconds']} s = {r['records_per_s']} records/s "
              f"(goal {r['goal_records_per_s']}), CPU {r['cpu_seconds']} s, ru_maxrss {r['maxrss_mb']} MB, "
              f"load {r['load']}", flush=True)
    if not args.skip_live:
        r = results["live"] = bench_live(args.live_rows, args.repeat)
        print(f"(b) live tap-postgres: {r['rows']} rows, tap alone {r['tap_alone_s']} s (CPU "
              f"{r['tap_alone_cpu_s']} s), ours {r['ours_s']} s (CPU {r['ours_cpu_s']} s, ru_maxrss "
              f"{r['ours_maxrss_mb']} MB): {r['ratio_of_its_rate']} of its rate (goal {r['goal_ratio']}), "
              f"load {r['load']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
