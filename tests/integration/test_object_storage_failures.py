"""Failures of Azure Blob, the REST catalog and a store that breaks during the run: one line, exit 2, nothing
published, no state advanced."""

from __future__ import annotations

import socket
from datetime import date

import pyarrow as pa
import pytest
from pyarrow import fs as pafs

from dativo_ingest.errors import InfrastructureError
from dativo_ingest.sinks.files.manifest import latest_manifest
from dativo_ingest.sinks.files.sink import FileTarget
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.storage.stores import s3_store
from tests.acceptance.helpers import cli, make_project, write_yaml
from tests.servers import Azurite


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _project(tmp_path, connector: str, target: dict, secrets: dict[str, str]):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long"}]})
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": connector, "asset": "t",
        "asset_path": "assets/csv/v1.0/t.yaml", "source": {"files": [{"path": "data/t.csv"}]}, "target": target})
    (project / "data").mkdir()
    (project / "data/t.csv").write_text("id\n1\n")
    (project / "secrets/acme").mkdir(parents=True)
    (project / "secrets/acme/s.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return project, job


def _one_line(out, *must: str, secret: str) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), out.stderr
    for text in must:
        assert text in lines[0], (text, lines[0])
    assert secret not in out.stderr + out.stdout


def _azure_secrets(server: Azurite, **over: str) -> dict[str, str]:
    return {"AZURE_STORAGE_ACCOUNT_NAME": server.account, "AZURE_STORAGE_ACCOUNT_KEY": server.key,
            "AZURE_STORAGE_CONTAINER": "present", "AZURE_STORAGE_ENDPOINT": server.endpoint, **over}


@pytest.mark.parametrize("case", ["bad key", "missing container", "unreachable"])
def test_azure_blob_failures_are_one_line(tmp_path, azurite, case):
    host = azurite.endpoint.split("://", 1)[1]
    pafs.AzureFileSystem(account_name=azurite.account, account_key=azurite.key, blob_storage_authority=host,
                         blob_storage_scheme="http").create_dir("present")
    bad_key = "QmFkS2V5Rm9yVGVzdHNPbmx5QmFkS2V5Rm9yVGVzdHNPbmx5QmFkS2V5Rm9yVGVzdA=="
    over = {"bad key": {"AZURE_STORAGE_ACCOUNT_KEY": bad_key},
            "missing container": {"AZURE_STORAGE_CONTAINER": "absent"},
            "unreachable": {"AZURE_STORAGE_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}}[case]
    project, job = _project(tmp_path, "azure_blob", {}, _azure_secrets(azurite, **over))
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    expected = {"bad key": "the credentials were refused", "missing container": "the container does not exist",
                "unreachable": "cannot reach the Blob service"}[case]
    _one_line(out, "t.yaml: target.connection: " + expected, "container '", "account 'devstoreaccount1'",
              secret=over.get("AZURE_STORAGE_ACCOUNT_KEY", azurite.key))


def test_rest_catalog_failures_are_one_line(tmp_path, seaweedfs):
    base = {"S3_ENDPOINT": seaweedfs.s3_endpoint, "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
            "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key}
    project, job = _project(tmp_path / "a", "iceberg", {}, {
        **base, "NESSIE_URI": seaweedfs.rest_uri, "ICEBERG_REST_CREDENTIAL": "admin:not-the-secret"})
    out = cli("run", "--config", str(job), cwd=project, home=tmp_path / "home")
    # (the URI came from the secrets, so the message shows it as ***)
    _one_line(out, "t.yaml: target.connection.catalog: cannot use the rest catalog at ***",
              "check target.connection.catalog.uri", secret="not-the-secret")
    project, job = _project(tmp_path / "b", "iceberg", {}, {
        **base, "ICEBERG_REST_CREDENTIAL": "a:b-secret"})
    nessie = f"http://127.0.0.1:{_closed_port()}/api/v1"  # from the environment: shown, as its /iceberg/ endpoint
    out = cli("check", "--config", str(job), cwd=project, home=tmp_path / "home", env={"NESSIE_URI": nessie})
    _one_line(out, f"cannot use the rest catalog at {nessie.replace('/api/v1', '/iceberg/')}: ", secret="b-secret")


def test_a_store_failing_during_the_run_publishes_nothing(tmp_path, seaweedfs):
    """The check passed, then the bucket is gone: the write fails in one line and no manifest moves."""
    store = s3_store({"bucket": seaweedfs.bucket, "prefix": "midrun", "endpoint": seaweedfs.s3_endpoint,
                      "access_key_id": seaweedfs.access_key, "secret_access_key": seaweedfs.secret_key}, "target")
    target = FileTarget(store, "parquet", 1024 * 1024, ["d"])
    sink = target.sink("t", pa.schema([("id", pa.int64())]), run_id="r1", ingest_date=date(2024, 1, 2))
    sink.write(pa.table({"id": [1, 2]}))
    sink.commit(StateEnvelope(streams={"s": {"n": 1}}))
    gone = FileTarget(s3_store({**vars_of(store), "bucket": "vanished-bucket"}, "target.connection"), "parquet",
                      1024 * 1024, ["d"])
    broken = gone.sink("t", pa.schema([("id", pa.int64())]), run_id="r2", ingest_date=date(2024, 1, 2))
    with pytest.raises(InfrastructureError) as err:
        broken.write(pa.table({"id": [3]}))
        broken.commit(StateEnvelope())
    message = str(err.value)
    assert "\n" not in message and "vanished-bucket" in message and seaweedfs.secret_key not in message
    assert "nothing of this commit was published" in message
    broken.abort()
    current = latest_manifest(store.at("d", "t"))
    assert current is not None and current.sequence == 1 and current.rows == 2  # untouched


def vars_of(store) -> dict[str, str]:
    return {"prefix": store.prefix, "endpoint": store.endpoint, "access_key_id": store.access_key_id,
            "secret_access_key": store.secret_access_key}
