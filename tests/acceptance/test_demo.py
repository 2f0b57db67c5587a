"""The README's demo: the demo job runs with no server, a rerun adds nothing, state show prints the envelope."""

import json

from tests.acceptance.helpers import REPO, catalog, cli


def test_demo_job_runs_then_reruns_idle_then_shows_state(tmp_path):
    home = tmp_path / "home"
    job = "jobs/acme/csv_employee_to_iceberg.yaml"
    first = cli("run", "--config", job, cwd=REPO, home=home)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["rows_written"] == 20 and summary["status"] == "ok"
    table = catalog(home).load_table("acme.csv_employee")
    snapshot = table.current_snapshot().snapshot_id
    rows = table.scan().to_arrow()
    assert rows.num_rows == 20
    assert sorted(rows.column("employee_id").to_pylist()) == list(range(1001, 1021))
    assert str(rows.schema.field("salary").type) == "decimal128(12, 2)"

    second = cli("run", "--config", job, cwd=REPO, home=home)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1])["rows_written"] == 0
    table = catalog(home).load_table("acme.csv_employee")
    assert table.current_snapshot().snapshot_id == snapshot
    assert table.scan().to_arrow().num_rows == 20

    shown = cli("state", "show", "--config", job, cwd=REPO, home=home)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["snapshot_id"] == snapshot
    state = info["state"]
    assert state["version"] == 1 and state["engine"] == "native"
    assert "data/employee/employees.csv" in state["streams"]["employees"]["files"]
    mirror = home / "state" / "acme" / "csv_employee_to_iceberg.json"
    assert json.loads(mirror.read_text()) == state


def test_check_and_dry_run_write_nothing(tmp_path):
    home = tmp_path / "home"
    job = "jobs/acme/csv_employee_to_iceberg.yaml"
    for args in (("check", "--config", job), ("run", "--config", job, "--dry-run")):
        out = cli(*args, cwd=REPO, home=home)
        assert out.returncode == 0, out.stderr
        assert "acme.csv_employee" in out.stdout
    assert not (home / "catalog.db").exists()


def test_state_reset_makes_the_next_run_read_again(tmp_path):
    home = tmp_path / "home"
    job = "jobs/acme/csv_employee_to_iceberg.yaml"
    assert cli("run", "--config", job, cwd=REPO, home=home).returncode == 0
    reset = cli("state", "reset", "--config", job, "--yes", cwd=REPO, home=home)
    assert reset.returncode == 0, reset.stderr
    again = cli("run", "--config", job, cwd=REPO, home=home)
    assert json.loads(again.stdout.strip().splitlines()[-1])["rows_read"] == 20
    # merge by primary key: re-read rows replace themselves
    assert catalog(home).load_table("acme.csv_employee").scan().to_arrow().num_rows == 20
