"""Stripe through the native REST engine against localstripe (a third-party fake of Stripe's API, from PyPI):
the shipped job, customers made through Stripe's own API, ``starting_after``/``has_more`` paging, the start
value applied to the records (localstripe refuses ``created`` on customers), charges with ``created[gt]``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.acceptance.helpers import cli, table_rows, write_yaml
from tests.integration.rest.conftest import edit_yaml, rest_project
from tests.stand_ins import LOCALSTRIPE_KEY, LocalStripe

JOB = "jobs/acme/stripe_customers_native.yaml"


def _project(tmp_path: Path, stripe: LocalStripe) -> Path:
    project = rest_project(tmp_path / "project", STRIPE_API_KEY=LOCALSTRIPE_KEY, STRIPE_API_BASE=stripe.url)
    # pages of 10, to page through localstripe's lists
    edit_yaml(project / "connectors/sources/stripe.yaml",
              lambda d: d["api"]["streams"]["customers"]["params"].update(limit=10))
    return project


def _summary(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_shipped_native_job_reads_customers_and_then_only_new_ones(tmp_path: Path,
                                                                     localstripe: LocalStripe) -> None:
    ids = localstripe.customers(25)
    project, home = _project(tmp_path, localstripe), tmp_path / "home"
    assert cli("check", "--config", JOB, cwd=project, home=home).returncode == 0
    assert _summary(cli("run", "--config", JOB, cwd=project, home=home))["rows_written"] == 25
    rows = {r["id"]: r for r in table_rows(home, "acme.stripe_customers").to_pylist()}
    assert set(rows) == set(ids)
    one = rows[ids[1]]
    assert one["email"] == "user1@example.com" and one["address.city"] == "Berlin"
    assert json.loads(one["metadata"]) == {"tier": "gold"} and one["created"].tzinfo is not None

    assert _summary(cli("run", "--config", JOB, cwd=project, home=home))["rows_written"] == 0
    state = json.loads((home / "state/acme/stripe_customers_native.json").read_text())["streams"]["customers"]
    assert state["cursor"]["field"] == "created" and state["rest"] is None


def test_a_customer_created_after_the_cursor_is_read_by_the_next_run(tmp_path: Path,
                                                                     localstripe: LocalStripe) -> None:
    localstripe.customers(3)
    project, home = _project(tmp_path, localstripe), tmp_path / "home"
    _summary(cli("run", "--config", JOB, cwd=project, home=home))
    time.sleep(1.1)  # Stripe's `created` has whole seconds: the next customers are a second later
    later = localstripe.customers(2, prefix="late")
    second = _summary(cli("run", "--config", JOB, cwd=project, home=home))
    rows = table_rows(home, "acme.stripe_customers")
    assert rows.num_rows == 5 and set(later) <= set(rows.column("id").to_pylist())
    assert second["rows_written"] == 2


def test_charges_ask_for_created_gt_the_cursor(tmp_path: Path, localstripe: LocalStripe) -> None:
    customer = localstripe.customers(1)[0]
    method = localstripe.call("POST", "/v1/payment_methods", {
        "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2040",
        "card[cvc]": "123"})["id"]
    localstripe.call("POST", f"/v1/payment_methods/{method}/attach", {"customer": customer})
    for amount in (500, 1200, 99):
        localstripe.call("POST", "/v1/charges", {"amount": str(amount), "currency": "eur", "customer": customer,
                                                 "source": method})
    project, home = _project(tmp_path, localstripe), tmp_path / "home"
    write_yaml(project / "assets/stripe/v1.0/charges.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "stripe_charges", "version": "1.0",
        "source_type": "stripe", "object": "charges",
        "schema": [{"name": "id", "type": "string", "required": True, "primary_key": True},
                   {"name": "amount", "type": "long", "required": True}, {"name": "currency", "type": "string"},
                   {"name": "customer", "type": "string"}, {"name": "paid", "type": "boolean"},
                   {"name": "created", "type": "timestamptz", "required": True}]})
    write_yaml(project / "jobs/acme/stripe_charges.yaml", {
        "tenant_id": "acme", "source_connector": "stripe", "target_connector": "iceberg", "engine": "native",
        "asset": "stripe_charges", "asset_path": "assets/stripe/v1.0/charges.yaml",
        "source": {"objects": ["charges"]}})
    out = _summary(cli("run", "--config", "jobs/acme/stripe_charges.yaml", cwd=project, home=home))
    assert out["rows_written"] == 3
    amounts = sorted(table_rows(home, "acme.stripe_charges").column("amount").to_pylist())
    assert amounts == [99, 500, 1200]
    assert _summary(cli("run", "--config", "jobs/acme/stripe_charges.yaml", cwd=project, home=home)
                    )["rows_written"] == 0


def test_test_connector_native_stripe_reports_records_and_resume(tmp_path: Path, localstripe: LocalStripe) -> None:
    localstripe.customers(12)
    project = _project(tmp_path, localstripe)
    env = {"STRIPE_API_KEY": LOCALSTRIPE_KEY, "STRIPE_API_BASE": localstripe.url}
    out = cli("test-connector", "--engine", "native", "--connector", "stripe", "--streams", "customers",
              cwd=project, home=tmp_path / "home", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS records: stream 'customers': 12 records match the asset stripe_customers" in out.stdout
    assert "PASS resume" in out.stdout and "result: PASS" in out.stdout
