"""SIGKILL a PostgreSQL → Iceberg run at 20 random moments; after a clean final run every source row is in
the table exactly once, in its latest version, and the committed cursor is the source's maximum.

The source table (schema ``dativo_faults_<random>``) has a primary key and an ``updated_at`` cursor with ties (three
rows share each value, so a commit point between equal values would lose rows). Each kill is either a
``DATIVO_FAULT`` point (mid-read, mid-stage, before-commit, after-commit) or a SIGKILL of the process group
after a random wall-time delay; between kills rows are inserted and updated. Seeded, so the sequence of
decisions is the same on every run (the moments a wall-time kill lands on depend on the machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.helpers import catalog, make_project, write_yaml
from tests.pg import URI, needs_postgres, psycopg, sql  # noqa: F401

#: the area's prefix, unique per run: parallel runs of the suite must not share the source table
SCHEMA = f"dativo_faults_{uuid.uuid4().hex[:8]}"
SEED = 20261127
KILLS = 20
ROWS = 150_000
COMMIT_EVERY = 40_000
POINTS = ["mid-read", "mid-stage", "before-commit", "after-commit"]
COLUMNS = ("id", "customer", "amount", "qty", "note", "updated_at")




pytestmark = needs_postgres




@pytest.fixture
def source():
    sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    sql(f"CREATE SCHEMA {SCHEMA}")
    sql(f"""CREATE TABLE {SCHEMA}.orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2),
            qty integer, note text, updated_at timestamptz NOT NULL)""")
    # three rows per cursor value: a commit between two of them would lose the third
    sql(f"""INSERT INTO {SCHEMA}.orders SELECT g, 'customer-' || (g % 997), (g % 100000) / 100.0, g % 50, NULL,
            timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second'
            FROM generate_series(1, {ROWS}) g""")
    yield f"{SCHEMA}.orders"
    sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _project(tmp_path: Path, table: str) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/postgres/v1.0/orders.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "orders", "version": "1.0",
        "source_type": "postgres", "object": "orders",
        "schema": [{"name": "id", "type": "long", "required": True, "primary_key": True},
                   {"name": "customer", "type": "string", "required": True},
                   {"name": "amount", "type": "decimal(12,2)"}, {"name": "qty", "type": "integer"},
                   {"name": "note", "type": "string"}, {"name": "updated_at", "type": "timestamptz", "required": True}],
    })
    job = write_yaml(project / "jobs/acme/pg_orders_to_iceberg.yaml", {
        "tenant_id": "acme", "source_connector": "postgres", "target_connector": "iceberg", "engine": "native",
        "asset": "orders", "asset_path": "assets/postgres/v1.0/orders.yaml",
        "source": {"connection": {"host": "127.0.0.1", "port": "5432", "database": "test", "user": "postgres",
                                  "password": ""},
                   "tables": [{"name": table, "object": "orders", "cursor_field": "updated_at",
                               "primary_key": ["id"]}],
                   "incremental": {"strategy": "updated_at", "cursor_field": "updated_at"}},
        "target": {"commit_every_rows": COMMIT_EVERY, "chunk_rows": COMMIT_EVERY},
    })
    return project, job


def start_run(project: Path, job: Path, home: Path, logs: Path, fault: str | None = None) -> subprocess.Popen:
    """``dativo_ingest run`` in its own process group, output to files (a full pipe would stall it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_") and k != "STATE_DIR"}
    env["DATIVO_HOME"] = str(home)
    if fault:
        env["DATIVO_FAULT"] = fault
    logs.parent.mkdir(parents=True, exist_ok=True)
    with open(logs.with_suffix(".out"), "w") as out, open(logs.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, "-m", "dativo_ingest", "run", "--config", str(job)], cwd=project,
                                env=env, stdout=out, stderr=err, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def committed(home: Path, identifier: str = "acme.orders") -> tuple[int, dict[str, Any] | None, int]:
    """(rows in the current snapshot, committed state envelope, number of snapshots) — from metadata only."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog(home).load_table(identifier)
    except NoSuchTableError:
        return 0, None, 0
    snap = table.current_snapshot()
    if snap is None:
        return 0, None, 0
    props = snap.summary.additional_properties
    state = props.get("dativo.state")
    return int(props.get("total-records", 0)), (json.loads(state) if state else None), len(table.snapshots())


def _row_key(row: tuple) -> tuple:
    """One row, normalised: the same text whether it came from PostgreSQL or from Iceberg."""
    rid, customer, amount, qty, note, ts = row
    return (int(rid), customer, None if amount is None else str(Decimal(amount)), qty, note,
            ts.astimezone(timezone.utc).isoformat())


def checksum(rows: list[tuple]) -> tuple[int, int]:
    """(count, order-independent checksum): the sum of a 64-bit hash of every normalised row."""
    total = 0
    for row in rows:
        digest = hashlib.blake2b(repr(_row_key(row)).encode(), digest_size=8).digest()
        total = (total + int.from_bytes(digest, "little")) % (1 << 64)
    return len(rows), total


def source_rows(table: str) -> list[tuple]:
    return [tuple(r) for r in sql(f"SELECT {', '.join(COLUMNS)} FROM {table}")]


def iceberg_rows(home: Path, identifier: str = "acme.orders") -> list[tuple]:
    data = catalog(home).load_table(identifier).scan(selected_fields=COLUMNS).to_arrow()
    return list(zip(*(data.column(c).to_pylist() for c in COLUMNS), strict=True))


def assert_same_rows(landed: list[tuple], source: list[tuple]) -> None:
    ids = [r[0] for r in landed]
    duplicated = len(ids) - len(set(ids))
    if checksum(landed) != checksum(source) or duplicated:
        have, want = {_row_key(r) for r in landed}, {_row_key(r) for r in source}
        raise AssertionError(f"table ≠ source: {len(landed)} rows vs {len(source)}, {duplicated} duplicated ids, "
                             f"missing {sorted(want - have)[:3]}, unexpected {sorted(have - want)[:3]}")


def mutate(table: str, rng: random.Random, round_no: int, next_id: int) -> tuple[int, int, int]:
    """Insert and update rows with cursor values after every earlier one; (inserted, updated, next id)."""
    base = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(hours=round_no)
    inserts = rng.choice([0, 500, 3_000, 20_000])
    if inserts:
        sql(f"""INSERT INTO {table} SELECT g, 'new-' || (g % 101), (g % 5000) / 100.0, g % 7, 'round {round_no}',
                timestamptz '{base.isoformat()}' + ((g - {next_id}) / 3) * interval '1 millisecond'
                FROM generate_series({next_id}, {next_id + inserts - 1}) g""")
    modulus, rest = rng.choice([97, 211, 997]), rng.randrange(97)
    updated = sql(f"""WITH u AS (UPDATE {table} SET amount = coalesce(amount, 0) + 1, note = 'updated {round_no}',
                      updated_at = timestamptz '{(base + timedelta(minutes=30)).isoformat()}'
                                   + (id % 1000) * interval '1 millisecond'
                      WHERE id % {modulus} = {rest} RETURNING 1) SELECT count(*) FROM u""")[0][0]
    return inserts, int(updated), next_id + inserts


def test_twenty_random_kills_then_a_clean_run_land_every_row_exactly_once(tmp_path, source):
    project, job = _project(tmp_path, source)
    home = tmp_path / "home"
    rng = random.Random(SEED)
    next_id, expected_seconds, faults_hit = ROWS + 1, 3.5, 0
    for i in range(1, KILLS + 1):
        fault = rng.choice(POINTS) if rng.random() < 0.4 else None
        delay = rng.uniform(0.1, 1.0) * expected_seconds
        started = time.monotonic()
        proc = start_run(project, job, home, tmp_path / "logs" / f"kill{i:02d}", fault)
        try:
            proc.wait(timeout=120 if fault else delay)
        except subprocess.TimeoutExpired:
            kill_group(proc)
        took = time.monotonic() - started
        err = (tmp_path / "logs" / f"kill{i:02d}.err").read_text()
        assert proc.returncode in (0, -signal.SIGKILL), f"run {i} failed ({proc.returncode}): {err[-2000:]}"
        if fault:  # a fault point is always reached: every run has new rows to read and commit
            assert proc.returncode == -signal.SIGKILL, f"run {i} was not killed at {fault}: {err[-2000:]}"
            faults_hit += 1
        else:
            if proc.returncode == 0:
                expected_seconds = max(1.5, took)
        rows, state, snapshots = committed(home)
        cursor = ((state or {}).get("streams", {}).get("orders") or {}).get("cursor", {}).get("value")
        how = f"DATIVO_FAULT={fault}" if fault else f"SIGKILL to the group after {delay:.2f} s"
        outcome = "killed" if proc.returncode == -signal.SIGKILL else "finished before the kill"
        inserted, updated, next_id = mutate(source, rng, i, next_id)
        print(f"kill {i:2d}/{KILLS}: {how:<40} → {outcome} at {took:.2f} s; table {rows} rows in {snapshots} "
              f"snapshots, cursor {cursor}; then +{inserted} rows inserted, {updated} updated")
    final = start_run(project, job, home, tmp_path / "logs" / "final")
    assert final.wait(timeout=180) == 0, (tmp_path / "logs/final.err").read_text()[-2000:]
    summary = json.loads((tmp_path / "logs/final.out").read_text().strip().splitlines()[-1])
    print(f"final run: {summary['rows_read']} rows read, {summary['rows_written']} written in {summary['commits']} "
          f"commits; {faults_hit} fault-point kills")

    landed, expected = iceberg_rows(home), source_rows(source)
    assert_same_rows(landed, expected)
    count, total = checksum(landed)
    print(f"table = source: {count} rows, checksum {total:016x}, 0 lost, 0 duplicated")
    assert committed_cursor(home) == sql(f"SELECT max(updated_at) FROM {source}")[0][0]
    # a run with nothing new reads nothing and keeps the committed cursor
    again = start_run(project, job, home, tmp_path / "logs" / "again")
    assert again.wait(timeout=120) == 0
    assert json.loads((tmp_path / "logs/again.out").read_text().strip().splitlines()[-1])["rows_read"] == 0
    assert committed_cursor(home) == sql(f"SELECT max(updated_at) FROM {source}")[0][0]


def committed_cursor(home: Path) -> datetime | None:
    _, state, _ = committed(home)
    value = (((state or {}).get("streams") or {}).get("orders") or {}).get("cursor", {}).get("value")
    return datetime.fromisoformat(value) if value else None
