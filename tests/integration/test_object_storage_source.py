"""Object storage as a source (issue 15, item 4): ``s3``, ``minio`` and ``azure_blob`` read CSV, Parquet and
JSON-lines objects under a prefix into Iceberg, incremental by each object's last-modified time and size, on
SeaweedFS and Azurite (the session fixtures of tests/servers.py)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml
from tests.servers import Azurite, SeaweedFS

ASSET = {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "events", "version": "1.0", "object": "events",
         "schema": [{"name": "id", "type": "long", "primary_key": True, "required": True},
                    {"name": "name", "type": "string"}, {"name": "amount", "type": "decimal(10,2)"}]}


def _parquet(rows: list[tuple]) -> bytes:
    table = pa.table({"id": [r[0] for r in rows], "name": [r[1] for r in rows],
                      "amount": pa.array([r[2] for r in rows], pa.float64())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _jsonl(rows: list[tuple]) -> bytes:
    return "".join(json.dumps({"id": r[0], "name": r[1], "amount": r[2]}) + "\n" for r in rows).encode()


def _csv(rows: list[tuple]) -> bytes:
    return ("id,name,amount\n" + "".join(f"{r[0]},{r[1]},{r[2]}\n" for r in rows)).encode()


def _project(tmp_path: Path, connector: str, secrets: dict[str, str], files: list[dict]) -> tuple[Path, str]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/objects/v1.0/events.yaml", ASSET)
    write_yaml(project / "jobs/acme/events.yaml", {
        "tenant_id": "acme", "source_connector": connector, "target_connector": "iceberg",
        "asset": "events", "asset_path": "assets/objects/v1.0/events.yaml", "source": {"files": files}})
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / f"{connector}.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return project, "jobs/acme/events.yaml"


def _run(project: Path, job: str, home: Path) -> dict:
    out = cli("run", "--config", job, cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _landed(home: Path) -> list[tuple]:
    return sorted((r["id"], r["name"], float(r["amount"])) for r in table_rows(home, "acme.events").to_pylist())


def _s3_secrets(server: SeaweedFS, prefix: str) -> dict[str, str]:
    return {"S3_ENDPOINT": server.s3_endpoint, "S3_BUCKET": server.bucket, "S3_PREFIX": prefix,
            "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
            "AWS_REGION": "us-east-1"}


def test_csv_parquet_and_jsonl_objects_on_seaweedfs_then_only_what_changed(tmp_path, seaweedfs):
    prefix = f"landing/{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=seaweedfs.s3_endpoint, aws_access_key_id=seaweedfs.access_key,
                      aws_secret_access_key=seaweedfs.secret_key, region_name="us-east-1")
    s3.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/a/1.csv", Body=_csv([(1, "ann", 1.5), (2, "bob", 2.0)]))
    s3.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/b/2.parquet", Body=_parquet([(3, "cy", 3.25)]))
    s3.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/c/3.jsonl", Body=_jsonl([(4, "dee", 4.0)]))
    s3.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/c/notes.txt", Body=b"not data")
    project, job = _project(tmp_path, "s3", _s3_secrets(seaweedfs, prefix), [
        {"path": "a/*.csv"}, {"path": "b/*.parquet"}, {"path": "c/*.jsonl"}])
    home = tmp_path / "home"
    check = cli("check", "--config", job, cwd=project, home=home)
    assert check.returncode == 0, check.stderr
    first = _run(project, job, home)
    assert first["rows_written"] == 4
    assert _landed(home) == [(1, "ann", 1.5), (2, "bob", 2.0), (3, "cy", 3.25), (4, "dee", 4.0)]

    state = json.loads(cli("state", "show", "--config", job, cwd=project, home=home).stdout)["state"]
    files = state["streams"]["events"]["files"]
    assert sorted(files) == ["a/1.csv", "b/2.parquet", "c/3.jsonl"]
    assert set(files["b/2.parquet"]) == {"etag", "mtime_ns", "size"} and files["b/2.parquet"]["etag"]
    assert _run(project, job, home)["rows_read"] == 0  # nothing changed: every object skipped

    s3.put_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/b/2.parquet", Body=_parquet([(3, "cy", 9.0),
                                                                                      (5, "eve", 5.0)]))
    third = _run(project, job, home)
    assert (third["rows_read"], third["rows_written"]) == (2, 2)  # only the changed object
    assert _landed(home) == [(1, "ann", 1.5), (2, "bob", 2.0), (3, "cy", 9.0), (4, "dee", 4.0), (5, "eve", 5.0)]


def test_minio_takes_the_seed_guides_variables(tmp_path, seaweedfs):
    prefix = f"minio/{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=seaweedfs.s3_endpoint, aws_access_key_id=seaweedfs.access_key,
                 aws_secret_access_key=seaweedfs.secret_key, region_name="us-east-1").put_object(
        Bucket=seaweedfs.bucket, Key=f"{prefix}/x.csv", Body=_csv([(1, "ann", 1.0)]))
    project, job = _project(tmp_path, "minio", _s3_secrets(seaweedfs, prefix), [{"path": "*.csv"}])
    assert _run(project, job, tmp_path / "home")["rows_written"] == 1


def test_blobs_on_azurite(tmp_path, azurite: Azurite):
    host = azurite.endpoint.split("://", 1)[1]
    fs = pafs.AzureFileSystem(account_name=azurite.account, account_key=azurite.key, blob_storage_authority=host,
                              blob_storage_scheme="http", dfs_storage_authority=host, dfs_storage_scheme="http")
    container = f"src{uuid.uuid4().hex[:8]}"
    fs.create_dir(container)
    with fs.open_output_stream(f"{container}/in/1.jsonl") as out:
        out.write(_jsonl([(1, "ann", 1.0), (2, "bob", 2.0)]))
    project, job = _project(tmp_path, "azure_blob", {
        "AZURE_STORAGE_ACCOUNT_NAME": azurite.account, "AZURE_STORAGE_ACCOUNT_KEY": azurite.key,
        "AZURE_STORAGE_CONTAINER": container, "AZURE_STORAGE_ENDPOINT": azurite.endpoint}, [{"path": "in/*.jsonl"}])
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_written"] == 2
    assert _run(project, job, home)["rows_read"] == 0


def test_a_missing_object_is_one_line_at_check(tmp_path, seaweedfs):
    project, job = _project(tmp_path, "s3", _s3_secrets(seaweedfs, "nowhere"), [{"path": "x.csv"}])
    out = cli("check", "--config", job, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert out.stderr.strip() == (f"ERROR: {job}: source.files[0].path: no object 'x.csv' in bucket "
                                  f"'{seaweedfs.bucket}' at {seaweedfs.s3_endpoint}")
