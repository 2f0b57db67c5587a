"""Where an Iceberg job's tables go is chosen by the job (``target.storage``, or the store block it writes
itself), never by which variables happen to be set (issue 15, item 5)."""

from __future__ import annotations

import json
import shutil

import yaml

from tests.acceptance.helpers import REPO, cli, make_project, table_rows

DEMO_JOB = "jobs/acme/csv_employee_to_iceberg.yaml"
AZURE = {"AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1",
         "AZURE_STORAGE_ACCOUNT_KEY": "QmFkS2V5Rm9yVGVzdHNPbmx5QmFkS2V5Rm9yVGVzdHNPbmx5QmFkS2V5Rm9yVGVzdA==",
         "AZURE_STORAGE_CONTAINER": "lake", "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:9"}


def _project(tmp_path):
    project = make_project(tmp_path / "project")
    for part in ("jobs", "assets", "data"):
        shutil.copytree(REPO / part, project / part)
    return project


def test_adding_an_azure_blob_secrets_file_changes_nothing_for_an_iceberg_job(tmp_path):
    project = _project(tmp_path)
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "azure_blob.env").write_text("".join(f"{k}={v}\n" for k, v in AZURE.items()))
    home = tmp_path / "home"
    check = cli("check", "--config", DEMO_JOB, cwd=project, home=home)
    assert check.returncode == 0, check.stderr
    out = cli("run", "--config", DEMO_JOB, cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["rows_written"] > 0
    assert table_rows(home, "acme.csv_employee").num_rows > 0  # the embedded catalog, the local warehouse
    assert any((home / "warehouse" / "acme" / "csv_employee" / "data").rglob("*.parquet"))


def test_storage_azure_is_what_sends_the_job_to_azure(tmp_path):
    project = _project(tmp_path)
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "azure_blob.env").write_text("".join(f"{k}={v}\n" for k, v in AZURE.items()))
    job = yaml.safe_load((project / DEMO_JOB).read_text())
    job["target"] = {"storage": "azure"}
    (project / DEMO_JOB).write_text(yaml.safe_dump(job))
    out = cli("check", "--config", DEMO_JOB, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "target.connection" in line and "127.0.0.1:9" in line and AZURE["AZURE_STORAGE_ACCOUNT_KEY"] not in line


def test_a_job_naming_two_stores_must_say_which(tmp_path):
    project = _project(tmp_path)
    job = yaml.safe_load((project / DEMO_JOB).read_text())
    job["target"] = {"connection": {"s3": {"bucket": "b"}, "azure_blob": {"container": "c"}}}
    (project / DEMO_JOB).write_text(yaml.safe_dump(job))
    out = cli("check", "--config", DEMO_JOB, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert out.stderr.strip() == (f"ERROR: {DEMO_JOB}: target.storage: target.connection names s3 and azure stores "
                                  "(say which one: storage: s3 or azure)")
