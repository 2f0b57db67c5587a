"""The original project's S3/MinIO jobs, unchanged but for their tests/fixtures/ paths, against SeaweedFS: only
the endpoint and credentials come from the tenant's secrets. And every way object storage can fail — an
unreachable endpoint, a missing bucket, refused credentials, a denied write — is one line and exit 2, before a
single row is read."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from tests.acceptance.helpers import cli, make_project, rewrite_v1_job
from tests.servers import SeaweedFS

JOBS = {  # job → (dataset folder under the bucket, rows)
    "csv_person_to_s3": ("raw/csv/person/test_tenant/dativo/adventureworks/csv_person", 10),
    "csv_sales_order_to_s3": (
        "raw/csv/sales_order_header/test_tenant/dativo/adventureworks/csv_sales_order_header", 10),
    "csv_listening_history_to_minio": (
        "raw/csv/listening_history/test_tenant/dativo/music_listening/csv_listening_history", 10),
    "csv_product_to_minio": ("raw/csv/product/test_tenant/dativo/adventureworks/csv_product", None),
}
SECRET_VALUE = "adminsecret"


def _secrets(project: Path, server: SeaweedFS, *, endpoint: str | None = None, key: str | None = None,
             secret: str | None = None) -> None:
    endpoint = endpoint or server.s3_endpoint
    key, secret = key or server.access_key, secret or server.secret_key
    folder = project / "secrets" / "test_tenant"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "s3.env").write_text(
        f"S3_ENDPOINT={endpoint}\nAWS_ACCESS_KEY_ID={key}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=us-east-1\n"
        f"MINIO_ENDPOINT={endpoint}\nMINIO_ACCESS_KEY={key}\nMINIO_SECRET_KEY={secret}\n")


def _s3(server: SeaweedFS):
    return boto3.client("s3", endpoint_url=server.s3_endpoint, aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key, region_name="us-east-1")


def _objects(server: SeaweedFS, prefix: str) -> list[str]:
    pages = _s3(server).get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _summary(out) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


@pytest.mark.parametrize("name", sorted(JOBS))
def test_original_file_jobs_land_in_seaweedfs(fixtures_dir, project, tmp_path, seaweedfs, name):
    folder, rows = JOBS[name]
    _s3(seaweedfs).delete_objects(Bucket=seaweedfs.bucket, Delete={
        "Objects": [{"Key": k} for k in _objects(seaweedfs, folder)] or [{"Key": "none"}]})
    job = rewrite_v1_job(fixtures_dir, name, project)
    _secrets(project, seaweedfs)
    home = tmp_path / "home"
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode in (0, 1), out.stderr
    summary = _summary(out)
    keys = _objects(seaweedfs, folder + "/")
    data = [k for k in keys if k.endswith(".parquet")]
    manifests = [k for k in keys if "/_manifests/" in k]
    assert len(data) == 1 and "/ingest_date=" in data[0] and data[0].endswith(f"{summary['run_id']}-0.parquet")
    assert len(manifests) == 1
    manifest = json.loads(_s3(seaweedfs).get_object(Bucket=seaweedfs.bucket, Key=manifests[0])["Body"].read())
    body = _s3(seaweedfs).get_object(Bucket=seaweedfs.bucket, Key=data[0])["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    assert table.num_rows == manifest["rows"] == summary["rows_written"]
    if rows is not None:
        assert (summary["rows_written"], summary["rows_quarantined"]) == (rows, 0)
    else:  # csv_product_to_minio runs in warn mode: whatever violates the asset is a quarantine dataset beside it
        assert summary["rows_written"] + summary["rows_quarantined"] == 11  # Product.csv has 11 records
        assert summary["rows_quarantined"] == 0 or [k for k in _objects(seaweedfs, folder + "__quarantine/")
                                                    if "/_manifests/" in k]
    assert "_dativo_run_id" in table.column_names and "ingest_date" not in table.column_names
    # exactly once: a second run finds the file in the state committed in the manifest
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == 0, again.stderr
    assert _summary(again)["rows_written"] == 0
    assert SECRET_VALUE not in out.stderr + out.stdout + again.stderr


def test_original_iceberg_job_lands_in_a_seaweedfs_warehouse(fixtures_dir, project, tmp_path, seaweedfs):
    job = rewrite_v1_job(fixtures_dir, "adventureworks_person_to_iceberg", project)
    _secrets(project, seaweedfs)
    home = tmp_path / "home"
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    warehouse = f"s3://{seaweedfs.bucket}/warehouse"
    catalog = SqlCatalog(f"dativo@{warehouse}", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=warehouse,
                         **{"s3.endpoint": seaweedfs.s3_endpoint, "s3.access-key-id": seaweedfs.access_key,
                            "s3.secret-access-key": seaweedfs.secret_key, "s3.region": "us-east-1"})
    table = catalog.load_table("test_tenant.csv_person")
    assert table.location() == f"{warehouse}/test_tenant/csv_person"
    rows = table.scan().to_arrow()
    assert rows.num_rows == 10 and rows.schema.field("ModifiedDate").type == pa.timestamp("us")
    assert [f.name for f in table.spec().fields] == ["ingest_date"]  # ingest_date is an Iceberg partition
    assert any("/ingest_date=" in k for k in _objects(seaweedfs, "warehouse/test_tenant/csv_person/data/"))
    again = cli("run", "--config", str(job), cwd=project, home=home)
    assert again.returncode == 0 and _summary(again)["rows_written"] == 0


# -- failures: one line, exit 2, before reading ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line_failure(out, *must: str, secret: str = SECRET_VALUE) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), out.stderr
    for text in must:
        assert text in lines[0], (text, lines[0])
    assert secret not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.mark.parametrize(("name", "command"), [("csv_person_to_s3", "run"), ("csv_product_to_minio", "check"),
                                                ("adventureworks_person_to_iceberg", "run"),
                                                ("adventureworks_person_to_iceberg", "check")])
def test_unreachable_endpoint(fixtures_dir, project, tmp_path, seaweedfs, name, command):
    job = rewrite_v1_job(fixtures_dir, name, project)
    _secrets(project, seaweedfs, endpoint=f"http://127.0.0.1:{_closed_port()}")
    out = cli(command, "--config", str(job), cwd=project, home=tmp_path / "home")
    field = "target.connection.s3" if name.endswith("iceberg") else "target.connection"
    _one_line_failure(out, f"{name}.yaml: {field}: cannot reach the object store", "bucket 'test-bucket'",
                      "start it, or correct")
    assert not (tmp_path / "home" / "state").exists() or not any((tmp_path / "home" / "state").rglob("*.json"))


@pytest.mark.parametrize("name", ["csv_sales_order_to_s3", "adventureworks_person_to_iceberg"])
def test_missing_bucket(fixtures_dir, project, tmp_path, seaweedfs, name):
    job = rewrite_v1_job(fixtures_dir, name, project)
    job.write_text(job.read_text().replace("bucket: test-bucket", "bucket: no-such-bucket"))
    _secrets(project, seaweedfs)
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    _one_line_failure(out, f"{name}.yaml", "the bucket does not exist", "bucket 'no-such-bucket'",
                      "create it", ".bucket")


def test_refused_credentials(fixtures_dir, project, tmp_path, seaweedfs):
    job = rewrite_v1_job(fixtures_dir, "csv_listening_history_to_minio", project)
    _secrets(project, seaweedfs, secret="wrong-secret-value")
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    _one_line_failure(out, "csv_listening_history_to_minio.yaml: target.connection: the credentials were refused",
                      "bucket 'test-bucket'", "check access_key_id / secret_access_key", secret="wrong-secret-value")


@pytest.mark.parametrize("name", ["csv_person_to_s3", "adventureworks_person_to_iceberg"])
def test_denied_write(fixtures_dir, project, tmp_path, seaweedfs, name):
    job = rewrite_v1_job(fixtures_dir, name, project)
    _secrets(project, seaweedfs, key=seaweedfs.reader_key, secret=seaweedfs.reader_secret)
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    _one_line_failure(out, f"{name}.yaml", "was denied (AccessDenied)", "bucket 'test-bucket'", "s3:PutObject",
                      secret=seaweedfs.reader_secret)
