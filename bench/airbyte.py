"""Airbyte engine benchmarks (issue #4), one command from the repository root:

    .venv/bin/python bench/airbyte.py [--records 1000000] [--live-count 100000] [--skip-pyairbyte] [--replay-only]

Each ``dativo_ingest run`` is timed by wall clock and by CPU seconds (its own and its children's, the connector
included), with the 1-minute load average: on a shared machine the CPU figure is the steadier one.

(a) replay: a recorded stream of RECORD messages (airbyte-source-faker's ``users``, 10 000 real records
    repeated with new ids, cached in bench/out/) replayed by the ``local`` launcher (``cat``) through
    ``dativo_ingest run`` into Iceberg: records/s end to end. Goal ≥ 300k/s.
(b) live: source-faker ``users`` with ``count`` N, ours end to end (``dativo_ingest run``: start-up, read, stage,
    commit; the first run also discovers) against the connector alone writing to /dev/null in the same run.
    Goal: ours ≥ 0.9 of its rate.
(c) PyAirbyte (``airbyte`` package in bench/out/venv-pyairbyte, default DuckDB cache) reading the same
    connector executable and count: our time against theirs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
CACHE = Path(os.environ.get("DATIVO_CONNECTORS_DIR") or Path.home() / ".cache" / "dativo-ingest-tests" / "connectors")
FAKER = "airbyte-source-faker==7.2.1"


def faker_executable() -> Path:
    sys.path.insert(0, str(REPO))
    from dativo_ingest.engines.launchers.venv import VenvLauncher

    launcher = VenvLauncher(FAKER, "source-faker", root=CACHE)
    launcher.ensure_ready()
    return launcher.executable_path()


def faker_files(workdir: Path, count: int, streams: tuple[str, ...] = ("users",)) -> tuple[Path, Path]:
    config = workdir / "config.json"
    config.write_text(json.dumps({"count": count, "seed": 42, "records_per_slice": 1000, "always_updated": False,
                                  "parallelism": 1}))
    out = subprocess.run([str(faker_executable()), "discover", "--config", str(config)], capture_output=True,
                         check=True).stdout
    catalog = next(json.loads(line) for line in out.splitlines() if b'"CATALOG"' in line)["catalog"]
    configured = {"streams": [{"stream": s, "sync_mode": "incremental", "destination_sync_mode": "append",
                               "cursor_field": ["updated_at"]} for s in catalog["streams"] if s["name"] in streams]}
    catalog_path = workdir / "catalog.json"
    catalog_path.write_text(json.dumps(configured))
    (workdir / "discover.jsonl").write_bytes(orjson.dumps({"type": "CATALOG", "catalog": catalog}) + b"\n")
    return config, catalog_path


def recording(records: int) -> Path:
    """``records`` RECORD lines of faker users (10 000 real ones, repeated with new ids) + one STATE at the end."""
    path = OUT / f"airbyte_faker_users_{records}.jsonl"
    if path.is_file():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config, catalog = faker_files(Path(tmp), 10_000)
        out = subprocess.run([str(faker_executable()), "read", "--config", str(config), "--catalog", str(catalog)],
                             capture_output=True, check=True).stdout
        shutil.copy(Path(tmp) / "discover.jsonl", OUT / "airbyte_faker_discover.jsonl")
    base = [orjson.loads(line) for line in out.splitlines() if line.startswith(b'{"type":"RECORD"')]
    with open(path, "wb") as fh:
        for i in range(records):
            message = base[i % len(base)]
            message["record"]["data"]["id"] = i + 1
            fh.write(orjson.dumps(message) + b"\n")
        fh.write(orjson.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "users"}, "stream_state": {"updated_at": "2030-01-01T00:00:00+00:00"}}}})
                 + b"\n")
    return path


REPLAY = """#!/bin/sh
case "$1" in
  spec) echo '{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}' ;;
  check) echo '{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}' ;;
  discover) cat "%(discover)s" ;;
  read) exec cat "%(records)s" ;;
esac
"""


def project(tmp: Path, name: str, source: dict, engine_options: dict, write_mode: str = "append"
            ) -> tuple[Path, Path]:
    root = tmp / "project"
    if not root.exists():
        shutil.copytree(REPO / "registry", root / "registry")
        shutil.copytree(REPO / "connectors", root / "connectors")
        shutil.copytree(REPO / "assets" / "faker", root / "assets" / "faker")
    job = root / "jobs" / "bench" / f"{name}.yaml"
    job.parent.mkdir(parents=True, exist_ok=True)
    job.write_text(json.dumps({
        "tenant_id": "bench", "source_connector": "faker", "target_connector": "iceberg",
        "target_connector_path": "connectors/targets/iceberg.yaml", "asset": "faker_users",
        "asset_path": "assets/faker/v1.0/users.yaml", "target": {"write_mode": write_mode},
        "engine": {"name": "airbyte", "options": {"airbyte": engine_options}}, "source": source}))
    return root, job


def dativo_run(root: Path, job: Path, home: Path) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update(DATIVO_HOME=str(home), DATIVO_PROJECT_DIR=str(root), DATIVO_CONNECTORS_DIR=str(CACHE))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run([str(REPO / ".venv" / "bin" / "dativo_ingest"), "run", "--config", str(job)], cwd=root,
                         env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"dativo_ingest run failed: {out.stderr[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    #: CPU seconds of the run and everything it started (the connector too): steadier than wall on a shared machine
    summary["_cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    summary["_load"] = round(os.getloadavg()[0], 2)
    return seconds, summary


def bench_replay(records: int) -> dict:
    path = recording(records)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "source-replay"
        script.write_text(REPLAY % {"discover": OUT / "airbyte_faker_discover.jsonl", "records": path})
        script.chmod(0o755)
        root, job = project(tmp, "replay", {"objects": ["users"]}, {"executable": str(script)})
        seconds, summary = dativo_run(root, job, tmp / "home")
    assert summary["rows_written"] == records, summary
    return {"records": records, "seconds": round(seconds, 2), "records_per_s": round(records / seconds),
            "cpu_s": summary["_cpu_s"], "records_per_cpu_s": round(records / summary["_cpu_s"]),
            "load_avg_1m": summary["_load"], "goal_records_per_s": 300_000, "bytes": path.stat().st_size}


def bench_live(count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config, catalog = faker_files(tmp, count)
        started = time.monotonic()
        subprocess.run([str(faker_executable()), "read", "--config", str(config), "--catalog", str(catalog)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        alone = time.monotonic() - started
        # overwrite: every run reads everything (no state), so the second run is the same work, warm
        root, job = project(tmp, "live", {"objects": ["users"], "connection": {"count": count}}, {},
                            write_mode="overwrite")
        cold, summary = dativo_run(root, job, tmp / "home")  # first run: discover too
        assert summary["rows_written"] == count, summary
        ours, summary = dativo_run(root, job, tmp / "home")  # later runs: catalog and spec cached
    assert summary["rows_written"] == count, summary
    return {"count": count, "connector_alone_s": round(alone, 2), "ours_first_run_s": round(cold, 2),
            "ours_s": round(ours, 2), "connector_rate": round(count / alone), "our_rate": round(count / ours),
            "ratio_of_its_rate": round(alone / ours, 3), "ratio_first_run": round(alone / cold, 3),
            "goal_ratio": 0.9}


PYAIRBYTE = """
import sys, time
import airbyte as ab
count, exe = int(sys.argv[1]), sys.argv[2]
started = time.monotonic()
source = ab.get_source("source-faker", config={"count": count, "seed": 42, "records_per_slice": 1000,
                                               "always_updated": False, "parallelism": 1},
                       local_executable=exe, streams=["users"])
result = source.read()
n = len(result["users"].to_pandas())
print(n, time.monotonic() - started)
"""


def bench_pyairbyte(count: int, ours_s: float) -> dict:
    python = OUT / "venv-pyairbyte" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(python.parents[1])], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "airbyte==0.71.3"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        out = subprocess.run([str(python), "-c", PYAIRBYTE, str(count), str(faker_executable())], cwd=tmp,
                             capture_output=True, text=True,
                             env={**os.environ, "DO_NOT_TRACK": "1", "AIRBYTE_OFFLINE_MODE": "1"})
        seconds = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"PyAirbyte failed: {out.stderr[-2000:]}")
    rows = int(out.stdout.split()[-2])
    assert rows == count, out.stdout
    return {"count": count, "pyairbyte_s": round(seconds, 2), "ours_s": ours_s,
            "our_speedup": round(seconds / ours_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--live-count", type=int, default=100_000)
    parser.add_argument("--skip-pyairbyte", action="store_true")
    parser.add_argument("--replay-only", action="store_true", help="only (a)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"replay": bench_replay(args.records)}
    print("(a) replay:", results["replay"], flush=True)
    if args.replay_only:
        return
    results["live"] = bench_live(args.live_count)
    print("(b) live faker:", results["live"], flush=True)
    if not args.skip_pyairbyte:
        results["pyairbyte"] = bench_pyairbyte(args.live_count, results["live"]["ours_s"])
        print("(c) PyAirbyte:", results["pyairbyte"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
