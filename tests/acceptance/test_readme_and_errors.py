"""The README's commands are CI's; CLI errors are one line, exit 2, and never carry a secret."""

import json

from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1: lines.index("```bash") + 3]
    assert "dativo_ingest run --config jobs/acme/csv_employee_to_iceberg.yaml" in block[0]
    assert "pytest" in block[1]
    assert block[1] in (REPO / ".ci" / "run").read_text()


def _demo_project(tmp_path, source_path="data/e.csv"):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/e.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "e", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long", "required": True, "primary_key": True}]})
    (project / "data").mkdir()
    (project / "data" / "e.csv").write_text("id\n1\n2\n")
    job = {"tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
           "asset": "e", "asset_path": "assets/csv/v1.0/e.yaml", "source": {"files": [{"path": source_path}]}}
    return project, job


def test_a_secret_in_a_failing_path_is_redacted(tmp_path):
    project, job = _demo_project(tmp_path, source_path="data/${DATA_TOKEN}.csv")
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "csv.env").write_text("DATA_TOKEN=tok-9f8e7d6c5b\n")
    path = write_yaml(project / "jobs/acme/e.yaml", job)
    out = cli("run", "--config", str(path), "--secrets-dir", "secrets", cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert "tok-9f8e7d6c5b" not in out.stderr + out.stdout
    assert "data/***.csv" in out.stderr and "file not found" in out.stderr


def test_unknown_connector_and_bad_tenant_are_one_line_errors(tmp_path):
    project, job = _demo_project(tmp_path)
    bad = write_yaml(project / "jobs/acme/bad.yaml", {**job, "source_connector": "foo"})
    out = cli("check", "--config", str(bad), cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "source_connector: Job validation failed: Connector 'foo' not found in registry — " in line
    good = write_yaml(project / "jobs/acme/e.yaml", job)
    out = cli("run", "--config", str(good), "--tenant-id", "../x", cwd=project, home=tmp_path / "home")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_job_dir_runs_every_job_of_the_tenant_and_reports_each(tmp_path):
    project, job = _demo_project(tmp_path)
    write_yaml(project / "jobs/acme/e.yaml", job)
    write_yaml(project / "assets/csv/v1.0/f.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "f", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long", "required": True}]})
    write_yaml(project / "jobs/acme/f.yaml", {**job, "asset": "f", "asset_path": "assets/csv/v1.0/f.yaml"})
    out = cli("run", "--job-dir", "jobs/acme", cwd=project, home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    summaries = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [(s["job"], s["rows_written"]) for s in summaries] == [("e", 2), ("f", 2)]
    assert table_rows(tmp_path / "home", "acme.f").num_rows == 2
