"""Issue #12 class 15: what used to reach a user as `internal error: <Exception>` is one line naming the file or
table and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml

ASSET = {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "e", "version": "1.0", "source_type": "csv",
         "schema": [{"name": "id", "type": "long"}, {"name": "v", "type": "string"},
                    {"name": "f", "type": "float"}, {"name": "d", "type": "decimal(10,2)"},
                    {"name": "updated_at", "type": "timestamp"}]}


def _project(tmp_path: Path) -> tuple[Path, Path]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/e.yaml", ASSET)
    job = write_yaml(project / "jobs/acme/e.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "e",
        "asset_path": "assets/csv/v1.0/e.yaml", "source": {"files": [{"path": "data/e.csv"}],
                                                          "incremental": {"cursor_field": "updated_at"}}})
    (project / "data").mkdir()
    (project / "data" / "e.csv").write_text("id,v,f,d,updated_at\n1,a,1.5,2.25,2024-01-01\n")
    return project, job


def _one_error(out, *words: str) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "internal error" not in errors[0], out.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_a_dativo_home_that_is_a_file(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    (tmp_path / "home").write_text("not a folder")
    for command in ("check", "run"):
        _one_error(cli(command, "--config", str(job), cwd=project, home=tmp_path / "home"),
                   "is a file, not a folder", "DATIVO_HOME")


def test_a_corrupted_catalog_database(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    home = tmp_path / "home"
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    (home / "catalog.db").write_bytes(b"this is not sqlite" * 100)
    for command in ("check", "run"):
        _one_error(cli(command, "--config", str(job), cwd=project, home=home), "catalog.db",
                   "the catalog database cannot be read", "restore it from a backup")


def test_table_metadata_deleted_behind_our_back(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    home = tmp_path / "home"
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    shutil.rmtree(home / "warehouse" / "acme" / "e" / "metadata")
    for command in (("run", "--config", str(job)), ("state", "show", "--config", str(job))):
        _one_error(cli(*command, cwd=project, home=home), "acme.e: the table's metadata cannot be read",
                   "restore the table's metadata folder")


def test_a_csv_with_a_duplicate_header(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    (project / "data" / "e.csv").write_text("id,v,V,f,d,updated_at\n1,a,b,1,2,2024-01-01\n")
    _one_error(cli("run", "--config", str(job), cwd=project, home=tmp_path / "home"),
               "data/e.csv: the header names the column 'V' twice")


def test_types_widen_as_iceberg_allows_and_anything_else_is_refused(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    home = tmp_path / "home"
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    widened = {**ASSET, "schema": [{**f, "type": {"float": "double", "decimal(10,2)": "decimal(14,2)"}.get(
        f["type"], f["type"])} for f in ASSET["schema"]]}
    write_yaml(project / "assets/csv/v1.0/e.yaml", widened)
    (project / "data" / "e.csv").write_text("id,v,f,d,updated_at\n2,b,2.5,123456789.25,2024-02-01\n")
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    rows = table_rows(home, "acme.e")
    assert str(rows.schema.field("f").type) == "double" and rows.num_rows == 2
    write_yaml(project / "assets/csv/v1.0/e.yaml", ASSET)  # narrower again: written in the table's types
    (project / "data" / "e.csv").write_text("id,v,f,d,updated_at\n3,c,3.5,3.25,2024-03-01\n")
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    assert table_rows(home, "acme.e").num_rows == 3
    retyped = {**ASSET, "schema": [{**f, "type": "long"} if f["name"] == "v" else f for f in ASSET["schema"]]}
    write_yaml(project / "assets/csv/v1.0/e.yaml", retyped)
    (project / "data" / "e.csv").write_text("id,v,f,d,updated_at\n4,5,1,1,2024-04-01\n")
    _one_error(cli("run", "--config", str(job), cwd=project, home=home),
               "acme.e: column 'v' is string in the table but the asset now declares", "Iceberg can only widen")


def test_a_committed_cursor_that_does_not_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dativo_ingest.config import load_job_plan
    from dativo_ingest.sinks.factory import open_sink
    from dativo_ingest.state.envelope import StateEnvelope

    project, job = _project(tmp_path)
    home = tmp_path / "home"
    assert cli("run", "--config", str(job), cwd=project, home=home).returncode == 0
    monkeypatch.setenv("DATIVO_HOME", str(home))
    monkeypatch.chdir(project)
    bad = StateEnvelope(streams={"e": {"cursor": {"field": "updated_at", "value": "yesterday-ish"}}})
    open_sink(load_job_plan(job, secrets_dir=None)).reset_state(bad)
    (project / "data" / "e.csv").touch()
    _one_error(cli("run", "--config", str(job), cwd=project, home=home),
               "acme.e: the committed cursor of stream 'e' (updated_at = 'yesterday-ish') is not a timestamp",
               "state reset")


def test_an_unquoted_decimal_in_a_flow_mapping_says_to_quote_it(tmp_path: Path) -> None:
    project, job = _project(tmp_path)
    (project / "assets/csv/v1.0/e.yaml").write_text(
        "apiVersion: v3.0.2\nkind: DataContract\nname: e\nversion: '1.0'\nsource_type: csv\nschema:\n"
        "  - {name: id, type: long}\n  - {name: d, type: decimal(10,2)}\n")
    _one_error(cli("check", "--config", str(job), cwd=project, home=tmp_path / "home"),
               "unknown field type 'decimal(10'", 'quote it, e.g. type: "decimal(10,2)"')
