"""Issue #12 class 1: the tenant is the first folder of every plain-file dataset, and no config value (prefix,
domain) can move a path outside its root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.helpers import cli, make_project, write_yaml


def _project(tmp_path: Path, **asset: object) -> Path:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/people.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "people", "version": "1.0", "source_type": "csv",
        "domain": "globex", "dataProduct": "crm", **asset,
        "schema": [{"name": "id", "type": "long", "primary_key": True}, {"name": "name", "type": "string"}]})
    (project / "data").mkdir()
    return project


def _job(project: Path, tenant: str, rows: str, prefix: str = "lake") -> Path:
    (project / "data" / f"{tenant}.csv").write_text("id,name\n" + rows)
    return write_yaml(project / f"jobs/{tenant}/people.yaml", {
        "tenant_id": tenant, "source_connector": "csv", "target_connector": "local", "asset": "people",
        "asset_path": "assets/csv/v1.0/people.yaml",
        "source": {"files": [{"path": f"data/{tenant}.csv"}]},
        "target": {"connection": {"path": "out", "prefix": prefix}}})


def _live_rows(dataset: Path) -> int:
    manifest = sorted((dataset / "_manifests").glob("*.json"))[-1]
    return json.loads(manifest.read_text())["rows"]


def test_two_tenants_on_one_asset_write_two_datasets(tmp_path: Path) -> None:
    project = _project(tmp_path)
    home = tmp_path / "home"
    acme = _job(project, "acme", "1,a\n2,b\n3,c\n")
    globex = _job(project, "globex", "1,x\n")
    assert cli("run", "--config", str(acme), cwd=project, home=home).returncode == 0
    assert cli("run", "--config", str(globex), cwd=project, home=home).returncode == 0  # a merge of its own data
    assert _live_rows(project / "out/lake/acme/globex/crm/people") == 3  # acme's domain 'globex' stays under acme
    assert _live_rows(project / "out/lake/globex/globex/crm/people") == 1


@pytest.mark.parametrize(("where", "value"), [("prefix", "../../escape"), ("prefix", "a/../../b"),
                                               ("domain", "../../.."), ("dataProduct", "..")])
def test_no_value_leaves_the_target_folder(tmp_path: Path, where: str, value: str) -> None:
    project = _project(tmp_path, **({where: value} if where != "prefix" else {}))
    job = _job(project, "acme", "1,a\n", prefix=value if where == "prefix" else "lake")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and where in errors[0], out.stderr
    assert not (tmp_path / "escape").exists() and not (project / "b").exists()
    assert not any(tmp_path.glob("**/*.parquet"))
