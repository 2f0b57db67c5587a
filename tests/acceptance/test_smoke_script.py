"""./tests/run_all_smoke_tests.sh, as the seed guide's Quick Reference runs it: every job under jobs/ passes.

The connector venvs go to the tests' per-machine cache (as in tests/integration/test_airbyte_faker.py), so the
Airbyte and Singer jobs install their connectors once per machine, whichever test comes first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.helpers import REPO, write_yaml
from tests.integration.test_airbyte_faker import connectors_cache
from tests.pg import URI, needs_postgres, psycopg
from tests.smoke.demo_tables import CREATORS
from tests.smoke.run import connectors_of, external_need, job_files
from tests.smoke.services import SERVICES

SCRIPT = REPO / "tests" / "run_all_smoke_tests.sh"


def _smoke(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update({"PYTHON": sys.executable, "DATIVO_CONNECTORS_DIR": str(connectors_cache())})
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=3600,
                          stdin=subprocess.DEVNULL)


@needs_postgres
def test_every_job_under_jobs_passes_and_the_last_line_counts_them_all() -> None:
    jobs = job_files(REPO / "jobs", [])
    out = _smoke()
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    external = [job for job in jobs if external_need(job)]  # only the Airbyte Stripe job needs a real account
    assert [job.name for job in external] == ([] if os.environ.get("STRIPE_ACCOUNT_ID")
                                              else ["stripe_customers_to_iceberg.yaml"])
    assert lines[-1] == f"{len(jobs) - len(external)} passed, 0 failed" + (f", {len(external)} skipped"
                                                                          if external else "")
    passed = [line.split()[1] for line in lines if line.startswith("PASS  ")]
    assert passed == [str(job.relative_to(REPO)) for job in jobs if job not in external]
    skipped = [line for line in lines if line.startswith("SKIP  ")]
    assert all("STRIPE_ACCOUNT_ID" in line for line in skipped) and len(skipped) == len(external)


def test_a_failing_job_is_one_fail_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    write_yaml(tmp_path / "jobs" / "acme" / "broken.yaml", {
        "tenant_id": "acme", "source_connector": "nope", "target_connector": "iceberg",
        "asset_path": "assets/csv/v1.0/employee.yaml"})
    out = _smoke("--jobs-dir", str(tmp_path / "jobs"))
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    fail = [line for line in lines if line.startswith("FAIL  ")]
    assert len(fail) == 1 and "broken.yaml  exit 2" in fail[0]
    assert "source_connector: Job validation failed: Connector 'nope' not found in registry" in fail[0]
    assert lines[-1] == "0 passed, 1 failed"


def test_only_the_jobs_that_need_a_stand_in_get_its_variables() -> None:
    needs = {job.name: {n for n in connectors_of(job) if n in SERVICES} for job in job_files(REPO / "jobs", [])}
    assert needs["mysql_customers_to_s3.yaml"] == {"s3"}
    assert needs["csv_employee_to_iceberg.yaml"] == set()  # an Iceberg job seeing S3_ENDPOINT would write to S3


@needs_postgres
def test_the_demo_tables_are_created_idempotently() -> None:
    for create in CREATORS:
        create()
    with psycopg.connect(URI) as con:
        before = con.execute("SELECT count(*), max(updated_at) FROM dativo_demo.orders").fetchone()
        singer = con.execute("SELECT count(*) FROM dativo_singer.orders").fetchone()
    for create in CREATORS:
        create()
    with psycopg.connect(URI) as con:
        assert con.execute("SELECT count(*), max(updated_at) FROM dativo_demo.orders").fetchone() == before
        assert con.execute("SELECT count(*) FROM dativo_singer.orders").fetchone() == singer
    assert before[0] == 50 and singer[0] >= 5


@pytest.mark.parametrize("path", ["assets/postgres/v1.0/db_orders.yaml", "assets/mysql/v1.0/customers.yaml",
                                  "jobs/acme/postgres_orders_to_iceberg.yaml", "jobs/acme/mysql_customers_to_s3.yaml"])
def test_the_guides_example_files_exist(path: str) -> None:
    assert (REPO / path).is_file()
