"""Object storage against real servers: SeaweedFS (S3 + Iceberg REST) and Azurite (Azure Blob), both started
by the session fixtures in tests/servers.py. The same demo job lands in every place by changing only secrets."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs as pafs
from pyiceberg.catalog import load_catalog
from pyiceberg.catalog.sql import SqlCatalog

from dativo_ingest.formats import markdown_kv
from dativo_ingest.sinks.files.sink import read_csv_file
from tests.acceptance.helpers import REPO, cli, make_project, table_rows, write_yaml
from tests.servers import Azurite, SeaweedFS

DEMO_JOB = "jobs/acme/csv_employee_to_iceberg.yaml"
DEMO_ROWS = 20


def _demo_project(root: Path, storage: str | None = None) -> Path:
    """The repository's demo project; with ``storage``, its Iceberg job says where its tables go."""
    project = make_project(root)
    for part in ("jobs", "assets", "data"):
        shutil.copytree(REPO / part, project / part)
    if storage is not None:
        with open(project / DEMO_JOB, "a") as fh:
            fh.write(f"target:\n  storage: {storage}\n")
    return project


def _secrets(project: Path, tenant: str, values: dict[str, str]) -> None:
    folder = project / "secrets" / tenant
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "store.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def _s3_secrets(server: SeaweedFS, **extra: str) -> dict[str, str]:
    return {"S3_ENDPOINT": server.s3_endpoint, "AWS_ACCESS_KEY_ID": server.access_key,
            "AWS_SECRET_ACCESS_KEY": server.secret_key, "AWS_REGION": "us-east-1", **extra}


def _s3(server: SeaweedFS):
    return boto3.client("s3", endpoint_url=server.s3_endpoint, aws_access_key_id=server.access_key,
                        aws_secret_access_key=server.secret_key, region_name="us-east-1")


def _keys(server: SeaweedFS, prefix: str) -> list[str]:
    out = _s3(server).list_objects_v2(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in out.get("Contents", []))


def _run(project: Path, job: str, home: Path, expect: int = 0) -> dict:
    out = cli("run", "--config", job, cwd=project, home=home)
    assert out.returncode == expect, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


def _azure_fs(server: Azurite) -> pafs.AzureFileSystem:
    host = server.endpoint.split("://", 1)[1]
    return pafs.AzureFileSystem(account_name=server.account, account_key=server.key, blob_storage_authority=host,
                                blob_storage_scheme="http", dfs_storage_authority=host, dfs_storage_scheme="http")


# -- Iceberg ---------------------------------------------------------------------------------------------------


def test_demo_job_lands_in_the_local_warehouse_seaweedfs_sql_rest_and_azurite_by_its_storage_and_secrets(
        tmp_path, seaweedfs, azurite):
    # 1. no secrets: the embedded catalog and a local warehouse
    local = _demo_project(tmp_path / "local")
    assert _run(local, DEMO_JOB, tmp_path / "h-local")["rows_written"] == DEMO_ROWS
    assert table_rows(tmp_path / "h-local", "acme.csv_employee").num_rows == DEMO_ROWS

    # 2. storage s3 and S3 secrets: the embedded SQL catalog, warehouse s3://test-bucket/warehouse on SeaweedFS
    sql = _demo_project(tmp_path / "sql", "s3")
    _secrets(sql, "acme", _s3_secrets(seaweedfs, S3_BUCKET=seaweedfs.bucket))
    home = tmp_path / "h-sql"
    assert _run(sql, DEMO_JOB, home)["rows_written"] == DEMO_ROWS
    warehouse = f"s3://{seaweedfs.bucket}/warehouse"
    catalog = SqlCatalog(f"dativo@{warehouse}", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=warehouse,
                         **{"s3.endpoint": seaweedfs.s3_endpoint, "s3.access-key-id": seaweedfs.access_key,
                            "s3.secret-access-key": seaweedfs.secret_key, "s3.region": "us-east-1"})
    table = catalog.load_table("acme.csv_employee")
    assert table.location() == f"{warehouse}/acme/csv_employee"
    assert table.scan().to_arrow().num_rows == DEMO_ROWS
    assert any(k.endswith(".parquet") for k in _keys(seaweedfs, "warehouse/acme/csv_employee/data/"))
    assert not (home / "warehouse" / "acme").exists()  # nothing went to the local warehouse
    # exactly once: the unchanged file is skipped on the next run, by the state in the S3 table's snapshot
    assert _run(sql, DEMO_JOB, home)["rows_written"] == 0
    props = table.metadata.properties | table.refresh().current_snapshot().summary.additional_properties
    assert seaweedfs.secret_key not in json.dumps(props)

    # 3. a REST catalog (SeaweedFS's Iceberg REST) named by NESSIE_URI, tables in its table bucket
    rest = _demo_project(tmp_path / "rest")
    _secrets(rest, "acme", _s3_secrets(seaweedfs, NESSIE_URI=seaweedfs.rest_uri,
                                       ICEBERG_REST_CREDENTIAL=f"{seaweedfs.access_key}:{seaweedfs.secret_key}",
                                       ICEBERG_REST_WAREHOUSE=seaweedfs.table_bucket))
    assert _run(rest, DEMO_JOB, tmp_path / "h-rest")["rows_written"] == DEMO_ROWS
    rest_catalog = load_catalog("check", type="rest", uri=seaweedfs.rest_uri, warehouse=seaweedfs.table_bucket,
                                credential=f"{seaweedfs.access_key}:{seaweedfs.secret_key}",
                                **{"oauth2-server-uri": f"{seaweedfs.rest_uri}/v1/oauth/tokens"},
                                **{"s3.endpoint": seaweedfs.s3_endpoint, "s3.access-key-id": seaweedfs.access_key,
                                   "s3.secret-access-key": seaweedfs.secret_key, "s3.region": "us-east-1"})
    rest_table = rest_catalog.load_table("acme.csv_employee")
    assert rest_table.location().startswith(f"s3://{seaweedfs.table_bucket}/")
    assert rest_table.scan().to_arrow().num_rows == DEMO_ROWS
    assert not (tmp_path / "h-rest" / "catalog.db").exists()
    assert _run(rest, DEMO_JOB, tmp_path / "h-rest")["rows_written"] == 0  # state from the REST table's snapshot

    # 4. storage azure and Azure secrets: the embedded SQL catalog, warehouse abfs://demo@devstoreaccount1…/warehouse
    _azure_fs(azurite).create_dir("demo")
    az = _demo_project(tmp_path / "azure", "azure")
    _secrets(az, "acme", {"AZURE_STORAGE_ACCOUNT_NAME": azurite.account, "AZURE_STORAGE_ACCOUNT_KEY": azurite.key,
                          "AZURE_STORAGE_CONTAINER": "demo", "AZURE_STORAGE_ENDPOINT": azurite.endpoint})
    assert _run(az, DEMO_JOB, tmp_path / "h-az")["rows_written"] == DEMO_ROWS
    files = _azure_fs(azurite).get_file_info(pafs.FileSelector("demo/warehouse/acme/csv_employee", recursive=True))
    assert any(f.path.endswith(".parquet") for f in files)
    assert _run(az, DEMO_JOB, tmp_path / "h-az")["rows_written"] == 0


# -- plain files -----------------------------------------------------------------------------------------------


def _files_project(tmp_path: Path, target: dict, *, connector: str, schema=None, csv: str | None = None,
                   tenant: str = "acme") -> tuple[Path, str]:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "domain": "sales", "dataProduct": "orders", "target": {"partitioning": ["ingest_date"]},
        "schema": schema or [{"name": "id", "type": "long", "primary_key": True}, {"name": "name", "type": "string"},
                             {"name": "amount", "type": "decimal(10,2)"}]})
    write_yaml(project / f"jobs/{tenant}/t.yaml", {
        "tenant_id": tenant, "source_connector": "csv", "target_connector": connector,
        "asset": "t", "asset_path": "assets/csv/v1.0/t.yaml", "source": {"files": [{"path": "data/t.csv"}]},
        "target": target})
    (project / "data").mkdir()
    (project / "data/t.csv").write_text(csv or "id,name,amount\n1,Ana,10.50\n2,Bo,7.25\n3,Cy,0.10\n")
    return project, f"jobs/{tenant}/t.yaml"


def _manifest(server: SeaweedFS, base: str) -> dict:
    names = [k for k in _keys(server, f"{base}/_manifests/") if k.endswith(".json")]
    body = _s3(server).get_object(Bucket=server.bucket, Key=names[-1])["Body"].read()
    return json.loads(body)


def _dataset_rows(server: SeaweedFS, base: str) -> pa.Table:
    manifest = _manifest(server, base)
    s3 = _s3(server)
    tables = [pq.read_table(pa.BufferReader(s3.get_object(Bucket=server.bucket, Key=f"{base}/{f['path']}")["Body"]
                                            .read())) for f in manifest["files"]]
    return pa.concat_tables(tables) if tables else pa.table({})


def test_parquet_files_on_s3_layout_manifest_and_exactly_once(tmp_path, seaweedfs):
    project, job = _files_project(tmp_path, {"connection": {"bucket": seaweedfs.bucket, "prefix": "raw/exact"},
                                             "write_mode": "append"}, connector="s3")
    _secrets(project, "acme", _s3_secrets(seaweedfs))
    home = tmp_path / "home"
    first = _run(project, job, home)
    base = "raw/exact/acme/sales/orders/t"
    keys = _keys(seaweedfs, base + "/")
    data = [k for k in keys if k.endswith(".parquet")]
    assert len(data) == 1 and data[0].startswith(f"{base}/ingest_date=")
    assert data[0].endswith(f"/{first['run_id']}-0.parquet")
    manifest = _manifest(seaweedfs, base)
    assert manifest["sequence"] == 1 and manifest["rows"] == 3 and manifest["run_id"] == first["run_id"]
    assert manifest["files"][0]["path"] == data[0][len(base) + 1:]
    assert manifest["state"]["streams"]  # the state lives in the manifest
    rows = _dataset_rows(seaweedfs, base)
    assert rows.column("amount").to_pylist()[0] == Decimal("10.50")
    assert "ingest_date" not in rows.column_names  # it is the folder, not a column
    assert first["snapshot_id"] == 1

    assert _run(project, job, home)["rows_written"] == 0  # unchanged file: skipped by the manifest's state
    assert len(_keys(seaweedfs, base + "/")) == len(keys)  # not even a new manifest
    (project / "data/t.csv").write_text("id,name,amount\n4,Di,1.00\n")
    third = _run(project, job, home)
    assert third["rows_written"] == 1 and third["snapshot_id"] == 2
    names = [k for k in _keys(seaweedfs, base + "/") if k.endswith(".parquet")]
    assert len(names) == 2 and len(set(n.rsplit("/", 1)[1] for n in names)) == 2  # unique names per run
    assert _dataset_rows(seaweedfs, base).num_rows == 4


def test_target_file_size_splits_files(tmp_path, seaweedfs):
    csv = "id,name,amount\n" + "".join(f"{i},name-{i}-{'x' * (i % 50)},{i}.25\n" for i in range(60_000))
    project, job = _files_project(tmp_path, {"connection": {"bucket": seaweedfs.bucket, "prefix": "raw/size"},
                                             "parquet_target_size_mb": 0.25}, connector="s3", csv=csv)
    _secrets(project, "acme", _s3_secrets(seaweedfs))
    run = _run(project, job, tmp_path / "home")
    manifest = _manifest(seaweedfs, "raw/size/acme/sales/orders/t")
    assert len(manifest["files"]) >= 3, manifest["files"]
    assert sum(f["rows"] for f in manifest["files"]) == 60_000 == run["rows_written"]
    assert all(f["bytes"] < 0.25 * 1024 * 1024 * 2 for f in manifest["files"])  # at most one row group over
    assert [f["path"].rsplit("-", 1)[1] for f in manifest["files"]][:3] == ["0.parquet", "1.parquet", "2.parquet"]


def test_merge_and_overwrite_on_plain_files(tmp_path, seaweedfs):
    project, job = _files_project(tmp_path, {"connection": {"bucket": seaweedfs.bucket, "prefix": "raw/merge"}},
                                  connector="minio")
    _secrets(project, "acme", {"S3_ENDPOINT": seaweedfs.s3_endpoint, "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
                               "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key})  # the seed guide's variables
    home = tmp_path / "home"
    _run(project, job, home)  # merge: the asset has a primary key
    (project / "data/t.csv").write_text("id,name,amount\n2,Bob,8.00\n4,Di,1.00\n")
    _run(project, job, home)
    base = "raw/merge/acme/sales/orders/t"
    rows = _dataset_rows(seaweedfs, base).sort_by("id")
    assert rows.column("id").to_pylist() == [1, 2, 3, 4]
    assert rows.column("name").to_pylist() == ["Ana", "Bob", "Cy", "Di"]
    manifest = _manifest(seaweedfs, base)
    assert manifest["removed"] and all(r not in [f["path"] for f in manifest["files"]] for r in manifest["removed"])
    live = {f"{base}/{f['path']}" for f in manifest["files"]}
    assert {k for k in _keys(seaweedfs, base + "/") if k.endswith(".parquet")} == live  # superseded files deleted

    job_path = project / job
    job_path.write_text(job_path.read_text().replace("target:\n", "target:\n  write_mode: overwrite\n"))
    (project / "data/t.csv").write_text("id,name,amount\n9,Zed,9.99\n")
    _run(project, job, home)
    assert _dataset_rows(seaweedfs, base).column("id").to_pylist() == [9]


def test_markdown_kv_files_local_and_on_s3(tmp_path, seaweedfs):
    csv = 'id,name,amount\n1,"two\nlines",1.00\n2,,2.50\n'
    project, job = _files_project(tmp_path, {"file_format": "markdown_kv", "connection": {"path": "out"}},
                                  connector="local", csv=csv)
    run = _run(project, job, tmp_path / "home")
    files = sorted((project / "out/acme/sales/orders/t").glob("ingest_date=*/*.md"))
    assert [f.name for f in files] == [f"{run['run_id']}-0.md"]
    text = files[0].read_text()
    assert text.startswith("## 1\nid: 1\nname: \"two\\nlines\"\namount: 1.00\n")
    assert "## 2\nid: 2\namount: 2.50\n" in text  # an empty CSV field is null: no line
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(10, 2)),
                        ("_dativo_ingest_ts", pa.timestamp("us", tz="UTC")), ("_dativo_run_id", pa.string())])
    back = markdown_kv.decode(text, schema)
    assert back.column("name").to_pylist() == ["two\nlines", None]
    manifests = list((project / "out/acme/sales/orders/t/_manifests").glob("*.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["file_format"] == "markdown_kv"

    s3_project, s3_job = _files_project(tmp_path / "s3", {
        "connection": {"s3": {"bucket": seaweedfs.bucket, "prefix": "md", "endpoint": "${S3_ENDPOINT}",
                              "access_key_id": "${AWS_ACCESS_KEY_ID}",
                              "secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}}}, connector="markdown_kv", csv=csv)
    _secrets(s3_project, "acme", _s3_secrets(seaweedfs))
    _run(s3_project, s3_job, tmp_path / "home-s3")
    md = [k for k in _keys(seaweedfs, "md/acme/sales/orders/t/") if k.endswith(".md")]
    body = _s3(seaweedfs).get_object(Bucket=seaweedfs.bucket, Key=md[0])["Body"].read().decode()
    fields = ["id", "name", "amount"]  # same documents wherever they are stored (system columns differ)
    assert markdown_kv.decode(body, schema).select(fields).equals(back.select(fields))
    assert body.startswith("## 1\nid: 1\nname: \"two\\nlines\"\n")


def _csv_rows(read_bytes, files: list[dict]) -> pa.Table:
    """The rows of a CSV dataset's live files, read back as the sink wrote them."""
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(10, 2)),
                        ("_dativo_ingest_ts", pa.timestamp("us", tz="UTC")), ("_dativo_run_id", pa.string())])
    tables = [read_csv_file(pa.BufferReader(read_bytes(f["path"])), schema) for f in files]
    return pa.concat_tables(tables).sort_by("id")


def test_csv_files_local_and_on_s3_same_manifest_protocol(tmp_path, seaweedfs):
    csv = 'id,name,amount\n1,"two\nlines",1.00\n2,,2.50\n3,"say ""hi""",0.10\n'
    # local: file_format csv on the local target
    project, job = _files_project(tmp_path, {"file_format": "csv", "connection": {"path": "out"}},
                                  connector="local", csv=csv)
    home = tmp_path / "home"
    run = _run(project, job, home)
    base = project / "out/acme/sales/orders/t"
    files = sorted(base.glob("ingest_date=*/*.csv"))
    assert [f.name for f in files] == [f"{run['run_id']}-0.csv"]
    manifest = json.loads(sorted((base / "_manifests").glob("*.json"))[-1].read_text())
    assert manifest["file_format"] == "csv" and manifest["rows"] == 3 and manifest["state"]["streams"]
    rows = _csv_rows(lambda rel: (base / rel).read_bytes(), manifest["files"])
    assert rows.column("name").to_pylist() == ["two\nlines", None, 'say "hi"']
    assert rows.column("amount").to_pylist() == [Decimal("1.00"), Decimal("2.50"), Decimal("0.10")]
    assert _run(project, job, home)["rows_written"] == 0  # the state in the manifest is honoured

    # s3 (SeaweedFS): merge by id rewrites the CSV file holding the changed key
    s3_project, s3_job = _files_project(tmp_path / "s3", {
        "file_format": "csv", "connection": {"bucket": seaweedfs.bucket, "prefix": "csvs"}}, connector="s3", csv=csv)
    _secrets(s3_project, "acme", _s3_secrets(seaweedfs))
    s3_home = tmp_path / "home-s3"
    _run(s3_project, s3_job, s3_home)
    (s3_project / "data/t.csv").write_text("id,name,amount\n2,Bo,8.00\n4,Di,1.00\n")
    _run(s3_project, s3_job, s3_home)
    prefix = "csvs/acme/sales/orders/t"
    manifest = _manifest(seaweedfs, prefix)
    assert manifest["file_format"] == "csv" and manifest["sequence"] == 2 and manifest["removed"]

    def get(rel: str) -> bytes:
        return _s3(seaweedfs).get_object(Bucket=seaweedfs.bucket, Key=f"{prefix}/{rel}")["Body"].read()

    rows = _csv_rows(get, manifest["files"])
    assert rows.column("id").to_pylist() == [1, 2, 3, 4]
    assert rows.column("name").to_pylist() == ["two\nlines", "Bo", 'say "hi"', "Di"]
    live = {f"{prefix}/{f['path']}" for f in manifest["files"]}
    assert {k for k in _keys(seaweedfs, prefix + "/") if k.endswith(".csv")} == live  # superseded files deleted

    # target_connector: csv: the same files in a local folder
    csv_project, csv_job = _files_project(tmp_path / "csvt", {"connection": {"path": "out"}}, connector="csv",
                                          csv=csv)
    _run(csv_project, csv_job, tmp_path / "home-csv")
    assert len(list((csv_project / "out/acme/sales/orders/t").glob("ingest_date=*/*.csv"))) == 1


def test_plain_files_on_azurite(tmp_path, azurite):
    _azure_fs(azurite).create_dir("files")
    project, job = _files_project(tmp_path, {"connection": {"azure_blob": {"prefix": "raw/az"}}},
                                  connector="azure_blob")
    _secrets(project, "acme", {"AZURE_STORAGE_ACCOUNT_NAME": azurite.account,
                               "AZURE_STORAGE_ACCOUNT_KEY": azurite.key, "AZURE_STORAGE_CONTAINER": "files",
                               "AZURE_STORAGE_ENDPOINT": azurite.endpoint})
    home = tmp_path / "home"
    assert _run(project, job, home)["rows_written"] == 3
    fs = _azure_fs(azurite)
    infos = fs.get_file_info(pafs.FileSelector("files/raw/az/acme/sales/orders/t", recursive=True))
    parquet = [i.path for i in infos if i.path.endswith(".parquet")]
    assert len(parquet) == 1 and "/ingest_date=" in parquet[0]
    assert pq.read_table(parquet[0], filesystem=fs).num_rows == 3
    assert [i.base_name for i in infos if i.path.endswith(".json")][0].startswith("000000000001-")
    assert _run(project, job, home)["rows_written"] == 0  # exactly once from the manifest in the container


def test_a_crash_before_the_manifest_publishes_nothing_and_the_next_run_reads_everything(tmp_path, seaweedfs):
    project, job = _files_project(tmp_path, {"connection": {"bucket": seaweedfs.bucket, "prefix": "raw/crash"}},
                                  connector="s3")
    _secrets(project, "acme", _s3_secrets(seaweedfs))
    home = tmp_path / "home"
    out = cli("run", "--config", job, cwd=project, home=home, env={"DATIVO_FAULT": "before-commit"})
    assert out.returncode != 0
    base = "raw/crash/acme/sales/orders/t"
    assert not [k for k in _keys(seaweedfs, base + "/") if "/_manifests/" in k]  # nothing published
    assert _run(project, job, home)["rows_written"] == 3  # no state was advanced: everything again
    assert _dataset_rows(seaweedfs, base).num_rows == 3  # the orphan file of the crashed run is not listed


def test_quarantine_of_a_file_target_is_a_sibling_dataset(tmp_path, seaweedfs):
    csv = "id,name,amount\n1,Ana,10.50\nx,Bo,7.25\n"
    project, job = _files_project(tmp_path, {"connection": {"bucket": seaweedfs.bucket, "prefix": "raw/q"}},
                                  connector="s3", csv=csv)
    job_path = project / job
    job_path.write_text(job_path.read_text() + "schema_validation_mode: warn\n")
    _secrets(project, "acme", _s3_secrets(seaweedfs))
    summary = _run(project, job, tmp_path / "home", expect=1)
    assert summary["rows_quarantined"] == 1
    assert _dataset_rows(seaweedfs, "raw/q/acme/sales/orders/t").num_rows == 1
    q = _dataset_rows(seaweedfs, "raw/q/acme/sales/orders/t__quarantine")
    assert q.num_rows == 1 and "id" in q.column("_dativo_reason")[0].as_py()


@pytest.mark.parametrize("connector", ["s3", "local"])
def test_file_targets_refuse_partition_columns_other_than_ingest_date(tmp_path, connector):
    project, job = _files_project(tmp_path, {"partitioning": ["name"], "connection": {"bucket": "b", "path": "out",
                                                                                     "endpoint": "http://127.0.0.1:9",
                                                                                     "access_key_id": "a",
                                                                                     "secret_access_key": "bbbb"}},
                                  connector=connector)
    out = cli("run", "--config", job, cwd=project, home=tmp_path / "home")
    assert out.returncode == 2
    assert "target.partitioning: plain-file targets are partitioned by ingest_date only" in out.stderr
