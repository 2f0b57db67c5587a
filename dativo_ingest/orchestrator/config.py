"""``configs/runner.yaml``: which jobs run on which schedule, and how many at once.

The model is strict like the other config models, and ``schemas/runner.schema.json`` is generated from it
(``python -m dativo_ingest.config.export_schemas``). Relative paths (``config``, ``job_dir``, ``runs_dir``,
``secrets_dir``) are resolved against the project root: ``$DATIVO_PROJECT_DIR``, else the nearest folder
above the runner file that holds ``registry/connectors.yaml``, else the current directory. ``${VAR}`` is
expanded from the environment in those paths. Nothing here imports Dagster.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from dativo_ingest.config.expand import expand_vars
from dativo_ingest.config.loader import discover_job_files, find_project_root, parse_model, read_yaml
from dativo_ingest.config.models import TENANT_ID_PATTERN, ClosedModel, NonEmptyStr
from dativo_ingest.errors import ConfigError
from dativo_ingest.paths import RUNNER_CONFIG_ENV, dativo_home, runner_config_path

#: Dagster names: letters, digits and underscores
SCHEDULE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EVERY_PATTERN = r"^[1-9][0-9]*[mhdw]$"
DURATION_PATTERN = r"^[0-9]+[smh]?$"
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$"
RESERVED_TAG_PREFIX = "dativo/"



def _pattern(pattern: str) -> Any:
    """A pattern for the JSON Schema; the model checks it in a validator, with a message that says what to write."""
    return Field(json_schema_extra={"pattern": pattern})


ScheduleName = Annotated[str, _pattern(SCHEDULE_NAME_PATTERN)]
CronText = Annotated[str, _pattern(CRON_PATTERN)]
EveryText = Annotated[str, _pattern(EVERY_PATTERN)]
DurationText = Annotated[str, _pattern(DURATION_PATTERN)]
PositiveInt = Annotated[int, Field(ge=1)]
#: ``{default: 1, acme: 2}``: keys are tenant ids (or ``default``)
TenantLimits = Annotated[dict[str, PositiveInt],
                         Field(json_schema_extra={"propertyNames": {"pattern": TENANT_ID_PATTERN}})]

_PATTERN_PROBLEMS = {
    "name": (SCHEDULE_NAME_PATTERN, "schedule name '{}' may hold only letters, digits and _ (it names the Dagster "
                                    "schedule and job)"),
    "cron": (CRON_PATTERN, "'{}' is not a cron expression (five fields, e.g. \"0 * * * *\", or @hourly, @daily, "
                           "@weekly, @monthly)"),
    "every": (EVERY_PATTERN, "'{}' is not an interval (use e.g. 15m, 2h, 1d or 1w)"),
    "retry_backoff": (DURATION_PATTERN, "'{}' is not a duration (use seconds, or e.g. 30s, 2m, 1h)"),
}
_EXACTLY_ONE = {
    "allOf": [
        {"oneOf": [{"required": ["config"]}, {"required": ["job_dir"]}]},
        {"oneOf": [{"required": ["cron"]}, {"required": ["every"]}]},
    ]
}


def every_to_cron(every: str) -> str:
    """``15m`` → ``*/15 * * * *``, ``2h`` → ``0 */2 * * *``, ``1d`` → ``0 0 * * *``, ``1w`` → ``0 0 * * 0``.

    Raises ``ValueError`` for intervals cron cannot express evenly (``90m``, ``5h``, ``3d``)."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", every.strip())
    if not match:
        raise ValueError(f"every '{every}' is not an interval (use e.g. 15m, 2h, 1d or 1w)")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "m" and n % 60 == 0:
        n, unit = n // 60, "h"
    if unit == "h" and n % 24 == 0:
        n, unit = n // 24, "d"
    if unit == "d" and n == 7:
        n, unit = 1, "w"
    if unit == "m" and 60 % n == 0:
        return "* * * * *" if n == 1 else f"*/{n} * * * *"
    if unit == "h" and 24 % n == 0:
        return "0 * * * *" if n == 1 else f"0 */{n} * * *"
    if unit == "d" and n == 1:
        return "0 0 * * *"
    if unit == "w" and n == 1:
        return "0 0 * * 0"
    raise ValueError(f"every '{every}' cannot be written as a cron schedule (use minutes that divide 60, "
                     f"hours that divide 24, 1d or 1w — or give cron instead)")


def duration_seconds(value: str | int) -> int:
    """``30`` / ``"30"`` / ``"30s"`` → 30, ``"2m"`` → 120, ``"1h"`` → 3600."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"([0-9]+)([smh]?)", value.strip())
    if not match:
        raise ValueError(f"'{value}' is not a duration (use e.g. 30s, 2m or 1h)")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class ScheduleEntry(ClosedModel):
    """One schedule: a job (``config``) or every job of a folder (``job_dir``), on ``cron`` or ``every``."""

    model_config = ConfigDict(json_schema_extra=_EXACTLY_ONE)

    name: ScheduleName
    config: NonEmptyStr = None  # type: ignore[assignment]  # absent, never null: keeps model and schema equal
    job_dir: NonEmptyStr = None  # type: ignore[assignment]
    cron: CronText = None  # type: ignore[assignment]
    every: EveryText = None  # type: ignore[assignment]
    timezone: NonEmptyStr = "UTC"
    enabled: bool = True
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    retry_backoff: DurationText | Annotated[int, Field(ge=0)] = "30s"
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "cron", "every", "retry_backoff")
    @classmethod
    def _matches_pattern(cls, value: Any, info: ValidationInfo) -> Any:
        pattern, problem = _PATTERN_PROBLEMS[str(info.field_name)]
        if isinstance(value, str) and not re.fullmatch(pattern, value):
            raise ValueError(problem.format(value))
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as UTC or Europe/Berlin)") \
                from None
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key.startswith(RESERVED_TAG_PREFIX) or key.startswith("dagster/"):
                raise ValueError(f"tag '{key}' is reserved (dativo/ and dagster/ tags are set by dativo_ingest)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleEntry:
        if (self.config is None) == (self.job_dir is None):
            raise ValueError(f"schedule '{self.name}' needs exactly one of config (a job file) or job_dir "
                             f"(a folder of jobs)")
        if (self.cron is None) == (self.every is None):
            raise ValueError(f"schedule '{self.name}' needs exactly one of cron (e.g. \"0 * * * *\") or every "
                             f"(e.g. 15m)")
        if self.every is not None:
            every_to_cron(self.every)  # raises ValueError when cron cannot express it
        return self

    @property
    def cron_schedule(self) -> str:
        return self.cron if self.cron is not None else every_to_cron(self.every)

    @property
    def backoff_seconds(self) -> int:
        return duration_seconds(self.retry_backoff)


class RunnerConfig(ClosedModel):
    """``configs/runner.yaml``: schedules and concurrency for ``dativo_ingest start orchestrated``."""

    schedules: list[ScheduleEntry] = Field(min_length=1)
    #: at most this many runs of one tenant at once: a number, or ``{default: 1, <tenant>: n}``
    concurrency_per_tenant: PositiveInt | TenantLimits = 1
    #: at most this many runs at once, all tenants together
    max_concurrent_runs: PositiveInt = 4
    #: Dagster's home (run history, event logs, compute logs); default ``${DATIVO_HOME:-.local}/dagster``
    runs_dir: NonEmptyStr = None  # type: ignore[assignment]
    #: folder holding ``<tenant>/`` secrets; default ``secrets`` in the project when it exists
    secrets_dir: NonEmptyStr = None  # type: ignore[assignment]
    mode: Literal["self_hosted", "cloud"] = "self_hosted"

    @field_validator("concurrency_per_tenant")
    @classmethod
    def _tenant_keys(cls, value: Any) -> Any:
        for key in value if isinstance(value, dict) else ():
            if not re.fullmatch(TENANT_ID_PATTERN, key):
                raise ValueError(f"'{key}' is not a tenant id (lowercase letters, digits, _ and -) nor default")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> RunnerConfig:
        seen: set[str] = set()
        for entry in self.schedules:
            if entry.name in seen:
                raise ValueError(f"schedule name '{entry.name}' is used twice (schedule names must be unique)")
            seen.add(entry.name)
        return self

    def tenant_limit(self, tenant_id: str) -> int:
        """How many runs of this tenant may run at once."""
        limits = self.concurrency_per_tenant
        if isinstance(limits, int):
            return limits
        return limits.get(tenant_id, limits.get("default", 1))


@dataclass
class ResolvedSchedule:
    entry: ScheduleEntry
    #: the job files this schedule runs, in name order
    job_files: list[Path]


@dataclass
class Runner:
    """A loaded runner file with every path resolved."""

    path: Path
    project_root: Path
    config: RunnerConfig
    runs_dir: Path
    secrets_dir: Path | None
    schedules: list[ResolvedSchedule] = field(default_factory=list)

    def tenant_limit(self, tenant_id: str) -> int:
        return self.config.tenant_limit(tenant_id)


def _resolve(root: Path, value: str, runner_path: Path, where: str) -> Path:
    expanded, _ = expand_vars(value, os.environ.get, path=runner_path, field=where)
    path = Path(os.path.expanduser(expanded))
    return (path if path.is_absolute() else root / path).resolve()


def _v1_layout_error(path: Path, data: dict[str, Any]) -> None:
    if "runner" in data and "schedules" not in data:
        raise ConfigError(path, "is the dativo v1 layout (runner.orchestrator.schedules)", field="runner",
                          fix="move schedules and concurrency_per_tenant to the top level, as in configs/runner.yaml")


def load_runner(path: Path, *, check_files: bool = True) -> Runner:
    """Read, validate and resolve a runner file; every failure is one ``ConfigError`` line."""
    path = Path(path)
    data = read_yaml(path)
    _v1_layout_error(path, data)
    config = parse_model(RunnerConfig, data, path)
    root = find_project_root(path)
    runs_dir = (_resolve(root, config.runs_dir, path, "runs_dir") if config.runs_dir
                else dativo_home() / "dagster")
    if config.secrets_dir:
        secrets_dir: Path | None = _resolve(root, config.secrets_dir, path, "secrets_dir")
        if check_files and not secrets_dir.is_dir():
            raise ConfigError(path, f"folder not found: {secrets_dir}", field="secrets_dir",
                              fix="point secrets_dir at a folder holding <tenant>/ sub-folders")
    else:
        secrets_dir = root / "secrets" if (root / "secrets").is_dir() else None
    runner = Runner(path=path, project_root=root, config=config, runs_dir=runs_dir, secrets_dir=secrets_dir)
    for i, entry in enumerate(config.schedules):
        if entry.config is not None:
            job = _resolve(root, entry.config, path, f"schedules[{i}].config")
            if check_files and not job.is_file():
                raise ConfigError(path, f"job file not found: {job}", field=f"schedules[{i}].config",
                                  fix="paths are relative to the project root (the folder holding registry/)")
            files = [job]
        else:
            folder = _resolve(root, entry.job_dir, path, f"schedules[{i}].job_dir")
            if not folder.is_dir():
                raise ConfigError(path, f"folder not found: {folder}", field=f"schedules[{i}].job_dir",
                                  fix="paths are relative to the project root (the folder holding registry/)")
            files = discover_job_files(folder)
            if not files:
                raise ConfigError(path, f"no job files (*.yaml) in {folder}", field=f"schedules[{i}].job_dir",
                                  fix="add jobs to the folder or remove the schedule")
        runner.schedules.append(ResolvedSchedule(entry, files))
    return runner


def tenant_limits(given: Path | None = None) -> tuple[Path | None, RunnerConfig | None]:
    """The runner file ``run --job-dir`` takes ``concurrency_per_tenant`` from: ``--runner-config``, else
    ``$DATIVO_RUNNER_CONFIG``, else ``configs/runner.yaml`` when it exists (else none: no tenant limit)."""
    path = runner_config_path(given)
    if given is None and not path.is_file():
        return None, None
    data = read_yaml(path)
    _v1_layout_error(path, data)
    return path, parse_model(RunnerConfig, data, path)


__all__ = [
    "RUNNER_CONFIG_ENV",
    "ResolvedSchedule",
    "Runner",
    "RunnerConfig",
    "ScheduleEntry",
    "duration_seconds",
    "every_to_cron",
    "load_runner",
    "runner_config_path",
    "tenant_limits",
]
