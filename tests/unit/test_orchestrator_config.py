"""configs/runner.yaml: the model and the generated JSON Schema agree; every → cron; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dativo_ingest.config.export_schemas import validate_with_schema
from dativo_ingest.config.loader import parse_model
from dativo_ingest.errors import ConfigError
from dativo_ingest.orchestrator.config import (
    RunnerConfig,
    duration_seconds,
    every_to_cron,
    load_runner,
    tenant_limits,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "runner.yaml"
JOB = "jobs/acme/csv_employee_to_iceberg.yaml"


def test_the_shipped_runner_file_loads_and_passes_model_and_schema():
    data = yaml.safe_load(SHIPPED.read_text())
    parse_model(RunnerConfig, data, SHIPPED)
    assert validate_with_schema("runner", data) == []
    runner = load_runner(SHIPPED)
    assert runner.project_root == REPO
    [schedule] = runner.schedules
    assert schedule.entry.name == "acme_employees" and schedule.job_files == [REPO / JOB]
    assert schedule.entry.cron_schedule == "*/15 * * * *"
    assert (schedule.entry.retries, schedule.entry.backoff_seconds) == (2, 30)
    assert runner.config.tenant_limit("acme") == 2


def test_the_readme_shows_the_shipped_runner_file_verbatim():
    readme = (REPO / "README.md").read_text()
    assert f"```yaml\n{SHIPPED.read_text()}```" in readme
    assert "dativo_ingest start orchestrated --runner-config configs/runner.yaml" in readme


@pytest.mark.parametrize(("every", "cron"), [
    ("1m", "* * * * *"), ("15m", "*/15 * * * *"), ("30m", "*/30 * * * *"), ("60m", "0 * * * *"),
    ("1h", "0 * * * *"), ("2h", "0 */2 * * *"), ("120m", "0 */2 * * *"), ("24h", "0 0 * * *"),
    ("1d", "0 0 * * *"), ("7d", "0 0 * * 0"), ("1w", "0 0 * * 0"),
])
def test_every_becomes_a_cron_string(every, cron):
    assert every_to_cron(every) == cron


@pytest.mark.parametrize("every", ["90m", "7m", "5h", "3d", "2w"])
def test_every_that_cron_cannot_express_is_an_error(every):
    with pytest.raises(ValueError, match="cannot be written as a cron schedule"):
        every_to_cron(every)


def test_durations():
    assert [duration_seconds(v) for v in (0, 45, "30", "30s", "2m", "1h")] == [0, 45, 30, 30, 120, 3600]


def _schedule(**extra):
    return {"schedules": [{"name": "s1", "config": JOB, "every": "15m", **extra}]}


GOOD = {
    "minimal": _schedule(),
    "cron": {"schedules": [{"name": "s1", "job_dir": "jobs/acme", "cron": "0 2 * * *"}]},
    "everything": {**_schedule(timezone="Europe/Berlin", enabled=False, retries=0, retry_backoff=10,
                               tags={"team": "hr"}),
                   "concurrency_per_tenant": {"default": 1, "acme": 3}, "max_concurrent_runs": 8,
                   "runs_dir": ".local/dagster", "secrets_dir": "secrets", "mode": "cloud"},
    "macro": {"schedules": [{"name": "s1", "config": JOB, "cron": "@daily"}]},
}

BROKEN = {
    "no_schedules": ({"schedules": []}, "schedules"),
    "both_config_and_job_dir": (_schedule(job_dir="jobs/acme"), "exactly one of config"),
    "neither_config_nor_job_dir": ({"schedules": [{"name": "s1", "every": "15m"}]}, "exactly one of config"),
    "both_cron_and_every": (_schedule(cron="0 * * * *"), "exactly one of cron"),
    "neither_cron_nor_every": ({"schedules": [{"name": "s1", "config": JOB}]}, "exactly one of cron"),
    "bad_name": ({"schedules": [{"name": "my schedule", "config": JOB, "every": "1h"}]}, "name"),
    "bad_every": (_schedule(every="15 minutes"), "every"),
    "bad_cron": ({"schedules": [{"name": "s1", "config": JOB, "cron": "hourly"}]}, "cron"),
    "negative_retries": (_schedule(retries=-1), "retries"),
    "retries_as_text": (_schedule(retries="2"), "retries"),
    "bad_backoff": (_schedule(retry_backoff="soon"), "retry_backoff"),
    "unknown_key": (_schedule(interval_seconds=60), "interval_seconds"),
    "null_config": ({"schedules": [{"name": "s1", "config": None, "job_dir": "jobs/acme", "every": "1h"}]},
                    "config"),
    "zero_concurrency": ({**_schedule(), "concurrency_per_tenant": 0}, "concurrency_per_tenant"),
    "bad_tenant_key": ({**_schedule(), "concurrency_per_tenant": {"Acme Corp": 2}}, "concurrency_per_tenant"),
    "bad_mode": ({**_schedule(), "mode": "cluster"}, "mode"),
    "top_level_typo": ({**_schedule(), "max_concurrent_run": 2}, "max_concurrent_run"),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_runner_files_pass_model_and_schema(name):
    data = GOOD[name]
    parse_model(RunnerConfig, data, "runner.yaml")
    assert validate_with_schema("runner", data) == []


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_runner_files_fail_model_and_schema_with_one_line(name):
    data, where = BROKEN[name]
    with pytest.raises(ConfigError) as info:
        parse_model(RunnerConfig, data, "configs/runner.yaml")
    message = str(info.value)
    assert message.startswith("configs/runner.yaml: ") and "\n" not in message
    assert where in message, message
    assert validate_with_schema("runner", data), f"the JSON Schema accepts {name}"


@pytest.mark.parametrize(("extra", "message"), [
    ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"every": "90m"}, "cannot be written as a cron schedule"),
    ({"tags": {"dativo/tenant": "x"}}, "reserved"),
])
def test_checks_the_schema_cannot_express_are_model_errors(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_model(RunnerConfig, _schedule(**extra), "runner.yaml")


def test_duplicate_schedule_names_are_an_error():
    data = {"schedules": [_schedule()["schedules"][0], _schedule()["schedules"][0]]}
    with pytest.raises(ConfigError, match="schedule name 's1' is used twice"):
        parse_model(RunnerConfig, data, "runner.yaml")


def test_the_v1_layout_is_named_with_its_fix(tmp_path):
    path = tmp_path / "runner.yaml"
    path.write_text(yaml.safe_dump({"runner": {"mode": "orchestrated", "orchestrator": {
        "type": "dagster", "schedules": [{"name": "x", "config": JOB, "cron": "0 * * * *"}],
        "concurrency_per_tenant": 1}}}))
    with pytest.raises(ConfigError) as info:
        load_runner(path)
    assert str(info.value) == (f"{path}: runner: is the dativo v1 layout (runner.orchestrator.schedules) (move "
                               "schedules and concurrency_per_tenant to the top level, as in configs/runner.yaml)")


def test_paths_resolve_against_the_project_root_and_missing_files_are_named(tmp_path, monkeypatch):
    project = tmp_path / "p"
    (project / "registry").mkdir(parents=True)
    (project / "registry" / "connectors.yaml").write_text("version: 3\nconnectors: {}\n")
    (project / "configs").mkdir()
    runner = project / "configs" / "runner.yaml"
    runner.write_text(yaml.safe_dump({**_schedule(), "runs_dir": "${RUNS_BASE}/d"}))
    monkeypatch.setenv("RUNS_BASE", str(tmp_path / "runs"))
    monkeypatch.delenv("DATIVO_PROJECT_DIR", raising=False)
    with pytest.raises(ConfigError) as info:
        load_runner(runner)
    assert f"schedules[0].config: job file not found: {project / JOB}" in str(info.value)
    (project / JOB).parent.mkdir(parents=True)
    (project / JOB).write_text("tenant_id: acme\n")
    loaded = load_runner(runner)
    assert loaded.project_root == project and loaded.runs_dir == tmp_path / "runs" / "d"
    assert loaded.secrets_dir is None


def test_tenant_limits_come_from_the_runner_file_when_there_is_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATIVO_RUNNER_CONFIG", raising=False)
    assert tenant_limits() == (None, None)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "runner.yaml").write_text(yaml.safe_dump(
        {**_schedule(), "concurrency_per_tenant": {"default": 1, "acme": 3}}))
    path, config = tenant_limits()
    assert path == Path("configs/runner.yaml")
    assert config.tenant_limit("acme") == 3 and config.tenant_limit("globex") == 1
    with pytest.raises(ConfigError, match="file not found"):
        tenant_limits(tmp_path / "nope.yaml")
