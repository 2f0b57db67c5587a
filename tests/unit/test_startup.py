"""``startup_sequence()``: what it checks before a run, and what it does not need to do."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dativo_ingest import startup
from dativo_ingest.errors import ConfigError
from dativo_ingest.init import init_project

JOB = "jobs/acme/csv_employee_to_iceberg.yaml"
ASSET = "assets/csv/v1.0/employee.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The demo project; ``DATIVO_HOME`` in the test's folder; the root logger put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    init_project(tmp_path / "project", tenant="acme")
    for name in ("DATIVO_PROJECT_DIR", "STATE_DIR", "DATIVO_RUNNER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path / "home"))
    yield tmp_path / "project"
    root.handlers[:] = handlers
    root.setLevel(level)


def _with_rules(project: Path, rules: list[dict[str, Any]]) -> None:
    path = project / ASSET
    data = yaml.safe_load(path.read_text())
    data["quality"] = rules
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_an_asset_without_quality_rules_opens_no_rule_engine(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("check_rules called for an asset without rules")

    from dativo_ingest.quality import evaluate

    monkeypatch.setattr(evaluate, "check_rules", refuse)
    out = startup.startup_sequence(config=project / JOB, check_infrastructure=False)
    assert [plan.asset.name for plan in out.plans] == ["csv_employee"]


def test_an_asset_with_quality_rules_has_them_bound_before_the_run(project: Path) -> None:
    _with_rules(project, [{"type": "sql", "query": "SELECT count(*) FROM {object} WHERE nope", "mustBe": 0}])
    with pytest.raises(ConfigError, match="quality rule 'employees.sql'"):
        startup.startup_sequence(config=project / JOB, check_infrastructure=False)
