"""The original project's CSV jobs, run with path rewrites (S3/MinIO targets swapped for the embedded
catalog where noted: object storage arrives with issue #6)."""

import json

import pyarrow as pa
import pytest

from tests.acceptance.helpers import cli, make_project, rewrite_v1_job, table_rows


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


def test_person_lands_ten_typed_rows(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, "adventureworks_person_to_iceberg", project, embedded_target=True)
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    rows = table_rows(home, "test_tenant.csv_person")
    assert rows.num_rows == 10
    assert rows.schema.field("BusinessEntityID").type == pa.int64()
    assert rows.schema.field("EmailPromotion").type == pa.int64()
    assert rows.schema.field("ModifiedDate").type == pa.timestamp("us")
    first = rows.sort_by("BusinessEntityID").slice(0, 1).to_pylist()[0]
    assert first["LastName"] == "Sánchez" and str(first["ModifiedDate"]) == "2009-01-07 00:00:00"
    assert "ingest_date" in rows.column_names  # the asset partitions by ingest_date


def test_strict_validation_fails_with_exit_2_and_commits_nothing(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, "csv_product_strict_validation", project, embedded_target=True)
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    assert "Product_invalid.csv:6: malformed record: expected 25 fields, got 26" in out.stderr
    assert "nothing committed" in out.stderr
    assert table_rows(home, "test_tenant.csv_product") is None  # not even an empty table is created
    assert not (home / "state" / "test_tenant" / "csv_product_strict_validation.json").exists()


def test_strict_validation_counts_violations_and_shows_examples(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    # the same file minus its malformed line: what remains are type/required violations
    good = project / "Product_invalid_rows.csv"
    lines = (fixtures_dir / "seeds/adventureworks/Product_invalid.csv").read_text().splitlines()
    good.write_text("\n".join(line for line in lines if not line.startswith("5,HL")) + "\n")
    job = rewrite_v1_job(fixtures_dir, "csv_product_strict_validation", project, embedded_target=True)
    job.write_text(job.read_text().replace(str(fixtures_dir / "seeds/adventureworks/Product_invalid.csv"), str(good)))
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    # the fixture's rows are shifted by one column, so DaysToManufacture is empty in every row
    assert "4 row(s) violate the asset csv_product" in out.stderr
    assert "row 3: ProductID: required value missing; DaysToManufacture: required value missing" in out.stderr
    assert table_rows(home, "test_tenant.csv_product") is None  # not even an empty table is created


def test_warn_mode_quarantines_and_exits_1(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, "csv_product_strict_validation", project, embedded_target=True)
    job.write_text(job.read_text().replace("schema_validation_mode: strict", "schema_validation_mode: warn"))
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["status"] == "partial" and summary["rows_quarantined"] == 5
    assert table_rows(home, "test_tenant.csv_product").num_rows == 0
    q = table_rows(home, "test_tenant.csv_product__quarantine").sort_by("_dativo_row")
    assert q.column("_dativo_row").to_pylist() == [1, 2, 3, 4, 6]
    reasons = q.column("_dativo_reason").to_pylist()
    assert reasons[2] == "ProductID: required value missing; DaysToManufacture: required value missing"
    assert reasons[4] == "expected 25 fields, got 26"
    assert q.column("_dativo_raw")[4].as_py().startswith("5,HL Mountain Frame")


def test_malformed_csv_fails_naming_the_line(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, "csv_malformed_data", project, embedded_target=True)
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert any("Product_malformed.csv:4: unclosed quote" in line for line in err), out.stderr
    assert "Traceback" not in out.stderr
    assert table_rows(home, "test_tenant.csv_product") is None  # not even an empty table is created


def test_employee_dataset_that_does_not_match_its_asset_is_quarantined(fixtures_dir, project, tmp_path):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, "csv_employee_to_iceberg", project, embedded_target=True)
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 1, out.stderr
    q = table_rows(home, "test_tenant.csv_employee__quarantine")
    assert q.num_rows == 5000
    assert "employee_id: required value missing" in q.column("_dativo_reason")[0].as_py()


@pytest.mark.parametrize("name", ["csv_person_to_s3", "csv_product_to_minio", "adventureworks_person_to_iceberg"])
def test_object_storage_jobs_fail_at_the_infrastructure_check_in_one_line(fixtures_dir, project, tmp_path, name):
    home = tmp_path / "home"
    job = rewrite_v1_job(fixtures_dir, name, project)
    env = {"S3_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-xyz", "AWS_REGION": "us-east-1",
           "MINIO_ENDPOINT": "http://127.0.0.1:9", "MINIO_ACCESS_KEY": "AKIAMINIOEXAMPLE",
           "MINIO_SECRET_KEY": "s3cr3t-value-xyz"}
    out = cli("run", "--config", str(job), cwd=project, home=home, env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ")
    assert "cannot reach the object store" in lines[0] and f"{name}.yaml" in lines[0] and "127.0.0.1:9" in lines[0]
    assert "s3cr3t-value-xyz" not in out.stderr + out.stdout


def test_original_jobs_load_unchanged(fixtures_dir, project, tmp_path):
    """`check` parses every original CSV job; only the infrastructure step may refuse them."""
    home = tmp_path / "home"
    env = {"S3_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
           "AWS_REGION": "us-east-1", "MINIO_ENDPOINT": "http://127.0.0.1:9", "MINIO_ACCESS_KEY": "a",
           "MINIO_SECRET_KEY": "b"}
    for name in ("csv_employee_to_iceberg", "csv_person_to_s3", "csv_sales_order_to_s3",
                 "csv_listening_history_to_minio", "csv_product_to_minio", "csv_malformed_data",
                 "csv_product_strict_validation", "adventureworks_person_to_iceberg"):
        job = rewrite_v1_job(fixtures_dir, name, project)
        out = cli("check", "--config", str(job), cwd=project, home=home, env=env)
        assert out.returncode == 2, (name, out.stdout)
        assert "cannot reach the object store" in out.stderr, (name, out.stderr)
