"""An outside tool agrees: ``datacontract-cli`` lints our exported contracts clean, and its ``test`` of the rows
the demo writes (Parquet files on a local path) gives the same quality verdicts as our evaluator.

datacontract-cli is installed once, into a venv of its own, in the per-machine test cache
(``~/.cache/dativo-ingest-tests/connectors``, like the connector venvs); the test is skipped, saying why,
when it cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from dativo_ingest.config import load_asset
from dativo_ingest.config.odcs import canonical_yaml, to_canonical
from dativo_ingest.quality.evaluate import evaluate
from tests.acceptance.helpers import REPO, cli, make_project, write_yaml

PACKAGE = "datacontract-cli[duckdb]==1.2.8"
V1_ASSETS = REPO.parent / "shared" / "fixtures" / "dativo-v1" / "assets"


def _cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dativo-ingest-tests" / "connectors"


@pytest.fixture(scope="module")
def datacontract() -> Path:
    """The ``datacontract`` executable, installed on first use."""
    from dativo_ingest.engines.launchers.venv import VenvLauncher
    from dativo_ingest.errors import InfrastructureError

    launcher = VenvLauncher(PACKAGE, "datacontract", root=_cache())
    try:
        launcher.ensure_ready()
    except InfrastructureError as exc:
        pytest.skip(f"{PACKAGE} cannot be installed here: {exc}")
    return launcher.executable_path()


def _lint(datacontract: Path, path: Path) -> dict[str, Any]:
    out = path.with_suffix(".lint.json")
    done = subprocess.run([str(datacontract), "lint", str(path), "--no-inline-references", "--output-format", "json",
                           "--output", str(out)], capture_output=True, text=True, timeout=300)
    assert out.is_file(), done.stdout + done.stderr
    return json.loads(out.read_text())


def _not_clean(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["result"], c["name"], c.get("reason") or "") for c in report["checks"] if c["result"] != "passed"]


#: many files in one process: what ``datacontract lint`` runs (DataContract.lint), without a start-up per file
_LINT_MANY = """
import json, sys
from datacontract.data_contract import DataContract
out = {}
for path in sys.argv[1:]:
    run = DataContract(data_contract_file=path, inline_references=False).lint()
    out[path] = [(str(getattr(c.result, "value", c.result)), c.name, c.reason or "") for c in run.checks]
print(json.dumps(out))
"""


def _lint_many(datacontract: Path, paths: list[Path]) -> dict[str, list[list[str]]]:
    done = subprocess.run([str(datacontract.parent / "python"), "-c", _LINT_MANY, *map(str, paths)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# the employee asset of the demo, with quality rules of every kind; ids name them for both tools
# (one rowCount rule: datacontract-cli 1.2.8 names two of them alike in one query, and fails every check)
OBJECT_RULES = [
    {"id": "rows_many", "metric": "rowCount", "mustBeGreaterThan": 100},
    {"id": "dept_job_unique", "metric": "duplicateValues", "arguments": {"properties": ["department_id", "job_id"]},
     "mustBe": 0},
    {"id": "rich", "type": "sql", "query": "SELECT count(*) FROM {object} WHERE salary > 100000",
     "mustBeLessThan": 5},
    {"id": "paid", "type": "sql", "query": "SELECT count(*) FROM {object} WHERE salary > 0", "mustBeBetween": [1, 20]},
]
FIELD_RULES = {
    "employee_id": [{"id": "id_present", "metric": "nullValues", "mustBe": 0},
                    {"id": "id_unique", "metric": "duplicateValues", "mustBe": 0}],
    "phone_number": [{"id": "phone_present", "metric": "nullValues", "mustBe": 0},
                     {"id": "phone_mostly", "metric": "missingValues", "arguments": {"missingValues": [None, ""]},
                      "mustBeLessThan": 50, "unit": "percent"}],
    "job_id": [{"id": "job_known", "metric": "invalidValues", "arguments": {"validValues": ["OPS", "DATA", "ENG"]},
                "mustBe": 0}],
    "email": [{"id": "email_shape", "metric": "invalidValues", "arguments": {"pattern": "^[a-z.]+@example\\.com$"},
               "mustBe": 0}],
    "department_id": [{"id": "dept_spread", "metric": "duplicateValues", "mustBeLessThan": 3}],
    "status": [{"id": "status_known", "metric": "invalidValues", "arguments": {"validValues": ["active"]},
                "mustBe": 0}],
}


def _employee_contract() -> dict[str, Any]:
    asset = load_asset(REPO / "assets/csv/v1.0/employee.yaml")
    contract = to_canonical(asset)
    obj = contract["schema"][0]
    obj["quality"] = OBJECT_RULES
    for prop in obj["properties"]:
        if prop["name"] in FIELD_RULES:
            prop["quality"] = FIELD_RULES[prop["name"]]
    return contract


def test_datacontract_lint_finds_our_exported_contracts_clean(tmp_path: Path, datacontract: Path) -> None:
    paths = sorted((REPO / "assets").rglob("*.yaml")) + (sorted(V1_ASSETS.rglob("*.yaml")) if V1_ASSETS.is_dir()
                                                          else [])
    written = []
    for i, path in enumerate(paths):
        out = tmp_path / f"{i:02d}_{path.name}"
        out.write_text(canonical_yaml(to_canonical(load_asset(path), path)))
        written.append(out)
    linted = _lint_many(datacontract, written)
    assert len(linted) == len(written) >= 4
    for path, checks in linted.items():
        assert checks and all(c[0] == "passed" for c in checks), (path, checks)
    quality = tmp_path / "employee_with_rules.yaml"
    quality.write_text(canonical_yaml(_employee_contract()))
    report = _lint(datacontract, quality)  # the command itself, on the contract with every kind of rule
    assert report["result"] == "passed" and _not_clean(report) == [], _not_clean(report)
    # and it does complain when something is wrong: the check can fail
    broken = yaml.safe_load(quality.read_text())
    broken["schema"][0]["properties"][0]["logicalType"] = "int"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert _lint(datacontract, tmp_path / "broken.yaml")["result"] != "passed"


def test_datacontract_test_and_our_rules_agree_on_the_rows_the_demo_writes(tmp_path: Path,
                                                                            datacontract: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    (project / "data").mkdir()
    (project / "data/employees.csv").write_text((REPO / "data/employee/employees.csv").read_text())
    contract = _employee_contract()
    write_yaml(project / "assets/employee.odcs.yaml", contract)
    out_dir = tmp_path / "files"
    job = write_yaml(project / "jobs/acme/employees.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "local", "asset": "csv_employee",
        "asset_path": "assets/employee.odcs.yaml", "target": {"connection": {"path": str(out_dir)}},
        "schema_validation_mode": "warn",  # the rules are meant to fail: record them, land the rows
        "source": {"files": [{"path": "data/employees.csv", "object": "employees"}]}})
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 1, run.stderr  # warn mode: the rows land, failed rules make it a partial success
    assert "quality rule(s) failed" in run.stderr
    files = sorted(out_dir.rglob("*.parquet"))
    assert files, f"no Parquet under {out_dir}"

    # theirs: datacontract test, reading the Parquet files through its DuckDB
    contract["servers"] = [{"server": "local", "type": "local", "format": "parquet",
                            "path": str(out_dir / "**" / "*.parquet")}]
    tested = tmp_path / "tested.yaml"
    tested.write_text(canonical_yaml(contract))
    report_path = tmp_path / "test.json"
    subprocess.run([str(datacontract), "test", str(tested), "--no-inline-references", "--output-format", "json",
                    "--output", str(report_path)], capture_output=True, text=True, timeout=600)
    report = json.loads(report_path.read_text())
    theirs = {c["qualityId"]: c for c in report["checks"] if c.get("qualityId")}

    # ours: the evaluator over the same rows
    table = pq.ParquetDataset([str(f) for f in files]).read()
    ours = {r.rule: r for r in evaluate(load_asset(project / "assets/employee.odcs.yaml"), table.to_batches(),
                                        table.schema)}

    ids = [r["id"] for r in OBJECT_RULES] + [r["id"] for rules in FIELD_RULES.values() for r in rules]
    assert sorted(theirs) == sorted(ids) and set(ids) <= set(ours)
    verdicts = {i: (ours[i].passed, theirs[i]["result"] == "passed") for i in ids}
    assert all(a == b for a, b in verdicts.values()), verdicts
    assert {i for i, (a, _) in verdicts.items() if not a} >= {"rows_many", "phone_present", "job_known", "email_shape"}
    assert {i for i, (a, _) in verdicts.items() if a} >= {"paid", "id_present", "id_unique", "status_known"}
    for i in ids:  # the measured values agree too (percent rules: they report the count)
        value = (theirs[i].get("diagnostics") or {}).get("value")
        if ours[i].unit == "rows" and value is not None:
            assert ours[i].observed == value, (i, ours[i].observed, value)
