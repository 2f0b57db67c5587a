"""runner.yaml → Dagster definitions: one asset per job, one schedule per entry, each running its own job."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance import DagsterInstance

from dativo_ingest.errors import ConfigError
from dativo_ingest.orchestrator.build import TENANT_TAG, build_definitions
from dativo_ingest.orchestrator.config import load_runner
from dativo_ingest.orchestrator.instance import concurrency_config, dagster_yaml, workspace_yaml
from tests.acceptance.helpers import catalog, make_project, table_rows, write_yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_JOB = "jobs/acme/csv_employee_to_iceberg.yaml"
SECOND_JOB = "jobs/acme/csv_people_to_iceberg.yaml"


def orchestrator_project(root: Path, schedules: list[dict] | None = None, **runner: object) -> Path:
    """A project with the demo job, a second job (same CSV, another table) and a runner file; returns the runner."""
    project = make_project(root)
    for rel in ("assets/csv/v1.0/employee.yaml", "data/employee/employees.csv", DEMO_JOB):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, project / rel)
    asset = yaml.safe_load((REPO / "assets/csv/v1.0/employee.yaml").read_text())
    write_yaml(project / "assets/csv/v1.0/people.yaml", {**asset, "name": "csv_people"})
    job = yaml.safe_load((REPO / DEMO_JOB).read_text())
    write_yaml(project / SECOND_JOB, {**job, "asset": "csv_people", "asset_path": "assets/csv/v1.0/people.yaml"})
    if schedules is None:
        schedules = [
            {"name": "employees", "config": DEMO_JOB, "cron": "5 * * * *", "timezone": "Europe/Berlin",
             "retries": 3, "retry_backoff": "10s", "tags": {"team": "hr"}},
            {"name": "people", "config": SECOND_JOB, "every": "15m", "enabled": False, "retries": 0},
        ]
    return write_yaml(project / "configs" / "runner.yaml", {"schedules": schedules, **runner})


@pytest.fixture
def keep_logging():
    """startup_sequence() configures the root logger, as the CLI wants; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _defs(runner_path: Path) -> dg.Definitions:
    return build_definitions(load_runner(runner_path))


def test_one_asset_per_job_keyed_tenant_table(tmp_path):
    defs = _defs(orchestrator_project(tmp_path / "p"))
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {"acme/csv_employee", "acme/csv_people"}
    spec = defs.get_assets_def(dg.AssetKey(["acme", "csv_employee"]))
    assert spec.group_names_by_key[dg.AssetKey(["acme", "csv_employee"])] == "acme"
    assert spec.specs_by_key[dg.AssetKey(["acme", "csv_employee"])].tags[TENANT_TAG] == "acme"


def test_one_schedule_per_entry_with_its_cron_timezone_status_tags_and_retry_policy(tmp_path):
    defs = _defs(orchestrator_project(tmp_path / "p"))
    repo = defs.get_repository_def()
    schedules = {s.name: s for s in repo.schedule_defs}
    assert set(schedules) == {"employees", "people"}
    employees, people = schedules["employees"], schedules["people"]
    assert (employees.cron_schedule, employees.execution_timezone) == ("5 * * * *", "Europe/Berlin")
    assert people.cron_schedule == "*/15 * * * *"  # every: 15m
    assert employees.default_status == dg.DefaultScheduleStatus.RUNNING
    assert people.default_status == dg.DefaultScheduleStatus.STOPPED  # enabled: false
    assert (employees.job_name, people.job_name) == ("employees", "people")
    job = repo.get_job("employees")
    assert job.tags == {"team": "hr", TENANT_TAG: "acme", "dativo/schedule": "employees"}
    policy = job.op_retry_policy
    assert (policy.max_retries, policy.delay, policy.backoff) == (3, 10, dg.Backoff.EXPONENTIAL)
    assert repo.get_job("people").op_retry_policy is None  # retries: 0
    assert job.executor_def.name == "in_process"


def test_two_schedules_run_two_different_jobs(tmp_path, dativo_home, keep_logging):
    """The late-binding trap: each schedule's job materializes its own job's table, and only that."""
    defs = _defs(orchestrator_project(tmp_path / "p"))
    instance = DagsterInstance.ephemeral()

    people = defs.resolve_job_def("people").execute_in_process(instance=instance)
    assert people.success
    assert table_rows(dativo_home, "acme.csv_people").num_rows == 20
    assert table_rows(dativo_home, "acme.csv_employee") is None
    [event] = people.asset_materializations_for_node("acme__csv_people")
    assert event.asset_key == dg.AssetKey(["acme", "csv_people"])
    assert event.metadata["table"].value == "acme.csv_people"

    employees = defs.resolve_job_def("employees").execute_in_process(instance=instance)
    assert employees.success
    assert employees.dagster_run.tags[TENANT_TAG] == "acme"
    [event] = employees.asset_materializations_for_node("acme__csv_employee")
    meta = {k: v.value for k, v in event.metadata.items()}
    table = catalog(dativo_home).load_table("acme.csv_employee")
    assert meta["table"] == "acme.csv_employee" and meta["status"] == "ok"
    assert (meta["rows_read"], meta["rows_written"], meta["rows_quarantined"]) == (20, 20, 0)
    assert meta["snapshot_id"] == table.current_snapshot().snapshot_id
    assert "data/employee/employees.csv" in meta["state"]["streams"]["employees"]["files"]
    assert meta["job_file"].endswith(DEMO_JOB)
    assert table_rows(dativo_home, "acme.csv_people").num_rows == 20  # untouched by the second run

    again = defs.resolve_job_def("employees").execute_in_process(instance=instance)  # same code path as `run`
    [event] = again.asset_materializations_for_node("acme__csv_employee")
    assert event.metadata["rows_written"].value == 0  # the committed state says the file was read


def test_a_job_dir_schedule_materializes_every_job_of_the_folder(tmp_path, dativo_home, keep_logging):
    runner = orchestrator_project(tmp_path / "p", [{"name": "all", "job_dir": "jobs/acme", "every": "1h"}])
    defs = _defs(runner)
    result = defs.resolve_job_def("all").execute_in_process()
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {
        "acme/csv_employee", "acme/csv_people"}
    assert table_rows(dativo_home, "acme.csv_people").num_rows == 20


def _retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_failures_are_retried_but_config_errors_are_not(tmp_path, dativo_home, keep_logging):
    runner = orchestrator_project(tmp_path / "p", [
        {"name": "employees", "config": DEMO_JOB, "every": "1h", "retries": 2, "retry_backoff": 0}])
    defs = _defs(runner)
    project = runner.parents[1]
    (project / "data/employee/employees.csv").unlink()  # a source failure: a retry may succeed
    missing = defs.resolve_job_def("employees").execute_in_process(raise_on_error=False)
    assert not missing.success and _retries(missing) == 2
    failure = missing.failure_data_for_node("acme__csv_employee").error
    assert failure.message.startswith("Exceeded max_retries of 2")
    assert "file not found" in failure.cause.message and "employees.csv" in failure.cause.message

    (project / DEMO_JOB).write_text("tenant_id: acme\nsource_connector: [\n")  # a config error: retrying is useless
    broken = defs.resolve_job_def("employees").execute_in_process(raise_on_error=False)
    assert not broken.success and _retries(broken) == 0
    assert "invalid YAML" in broken.failure_data_for_node("acme__csv_employee").error.message
    assert table_rows(dativo_home, "acme.csv_employee") is None


def test_two_jobs_writing_one_table_and_bad_jobs_are_one_line_errors(tmp_path):
    runner = orchestrator_project(tmp_path / "p", [{"name": "a", "job_dir": "jobs/acme", "every": "1h"}])
    project = runner.parents[1]
    job = yaml.safe_load((project / DEMO_JOB).read_text())
    write_yaml(project / "jobs/acme/copy.yaml", job)
    with pytest.raises(ConfigError, match="both write acme.csv_employee"):
        _defs(runner)
    write_yaml(project / "jobs/acme/copy.yaml", {**job, "source_connector": "nope"})
    with pytest.raises(ConfigError,
                       match="source_connector: Job validation failed: Connector 'nope' not found in registry"):
        _defs(runner)


def test_a_cron_string_dagster_cannot_run_is_a_config_error(tmp_path):
    runner = orchestrator_project(tmp_path / "p", [{"name": "a", "config": DEMO_JOB, "cron": "61 * * * *"}])
    with pytest.raises(ConfigError, match="schedule 'a': '61 \\* \\* \\* \\*' is not a valid cron expression"):
        _defs(runner)


def test_a_schedule_over_several_tenants_is_refused(tmp_path):
    runner = orchestrator_project(tmp_path / "p", [{"name": "a", "job_dir": "jobs/mixed", "every": "1h"}])
    project = runner.parents[1]
    job = yaml.safe_load((project / DEMO_JOB).read_text())
    write_yaml(project / "jobs/mixed/a.yaml", job)
    write_yaml(project / "jobs/mixed/b.yaml", {**job, "tenant_id": "globex", "asset": "csv_people",
                                               "asset_path": "assets/csv/v1.0/people.yaml"})
    with pytest.raises(ConfigError, match=r"schedule 'a' runs jobs of several tenants \(acme, globex\)"):
        _defs(runner)


def test_instance_limits_runs_per_tenant_and_dagster_accepts_it(tmp_path):
    runner = load_runner(orchestrator_project(tmp_path / "p", max_concurrent_runs=3))
    assert concurrency_config(runner, ["acme"]) == {"runs": {"max_concurrent_runs": 3, "tag_concurrency_limits": [
        {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]}}
    per_tenant = load_runner(orchestrator_project(tmp_path / "q", concurrency_per_tenant={"default": 2, "globex": 5}))
    limits = concurrency_config(per_tenant, ["acme"])["runs"]["tag_concurrency_limits"]
    assert limits == [{"key": TENANT_TAG, "value": "acme", "limit": 2}, {"key": TENANT_TAG, "value": "globex",
                                                                         "limit": 5}]
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(dagster_yaml(per_tenant, ["acme"])))
    instance = DagsterInstance.from_config(str(home))
    try:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert [(t["value"], t["limit"]) for t in queue.tag_concurrency_limits] == [("acme", 2), ("globex", 5)]
    finally:
        instance.dispose()
    location = workspace_yaml(per_tenant)["load_from"][0]["python_module"]
    assert location["module_name"] == "dativo_ingest.orchestrator.definitions" and location["attribute"] == "defs"
    assert location["working_directory"] == str(tmp_path / "q")


def test_the_definitions_module_reads_dativo_runner_config(tmp_path, monkeypatch):
    import importlib
    import sys

    runner = orchestrator_project(tmp_path / "p")
    monkeypatch.setenv("DATIVO_RUNNER_CONFIG", str(runner))
    sys.modules.pop("dativo_ingest.orchestrator.definitions", None)
    module = importlib.import_module("dativo_ingest.orchestrator.definitions")
    try:
        assert {s.name for s in module.defs.get_repository_def().schedule_defs} == {"employees", "people"}
    finally:
        sys.modules.pop("dativo_ingest.orchestrator.definitions", None)


def test_the_shipped_runner_file_builds_definitions():
    defs = _defs(REPO / "configs" / "runner.yaml")
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert schedules["acme_employees"].cron_schedule == "*/15 * * * *"
    assert dg.AssetKey(["acme", "csv_employee"]) in defs.get_repository_def().asset_graph.get_all_asset_keys()
