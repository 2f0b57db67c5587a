"""No server needed: Markdown-KV round trips, store and catalog configuration, plain files on a local disk."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from dativo_ingest.config.models import JobTarget
from dativo_ingest.errors import ConfigError
from dativo_ingest.formats import markdown_kv
from dativo_ingest.sinks.files.manifest import latest_manifest
from dativo_ingest.sinks.files.sink import FileTarget, read_csv_file
from dativo_ingest.sinks.iceberg.catalog import choose_catalog, nessie_rest_uri
from dativo_ingest.stage.types import parse_type
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.storage.stores import azure_store, local_store, make_store, nested_store, store_block

TYPES = ["string", "uuid", "integer", "long", "float", "double", "decimal(12,3)", "boolean", "date", "time",
         "timestamp", "timestamptz", "json", "binary"]
UTC = dt.timezone.utc


def sample_values(name: str) -> list:
    """Ten values of a stage type, edge cases first (shared by the format and database round-trip tests)."""
    return {
        "string": ["plain", "", " lead", "trail ", '"quoted', "two\nlines", "tab\there", "Ünïcödé ✓", "key: v", None],
        "uuid": ["3ad8a339-b271-4c7a-bdf5-90b788b8ddf5", None, "", "x", "y", "z", "a", "b", "c", "d"],
        "integer": [0, -1, 2**62, -(2**63), 2**63 - 1, None, 7, 8, 9, 10],
        "long": [1, None, 3, 4, 5, 6, 7, 8, 9, 10],
        "float": [0.1, -0.0, float("inf"), float("-inf"), 3.4e38, 1e-45, None, 1.5, 2.5, 3.5],
        "double": [0.1, 1 / 3, 1e300, 5e-324, -0.0, float("inf"), None, 123456789.123456789, 2.0, -7.25],
        "decimal(12,3)": [Decimal("1.500"), Decimal("-999999999.999"), Decimal("0.000"), None] + [Decimal(i)
                                                                                                  for i in range(6)],
        "boolean": [True, False, None, True, False, True, False, True, False, True],
        "date": [dt.date(2024, 1, 15), dt.date(1, 1, 1), dt.date(9999, 12, 31), None] + [dt.date(2000, 1, i + 1)
                                                                                        for i in range(6)],
        "time": [dt.time(0), dt.time(23, 59, 59, 999999), dt.time(10, 0, 0, 1), None] + [dt.time(i) for i in range(6)],
        "timestamp": [dt.datetime(2009, 1, 7), dt.datetime(1970, 1, 1, 0, 0, 0, 1), None] + [
            dt.datetime(2024, 2, 29, i) for i in range(7)],
        "timestamptz": [dt.datetime(2009, 1, 7, tzinfo=UTC), None] + [dt.datetime(2024, 1, 1, i, tzinfo=UTC)
                                                                     for i in range(8)],
        "json": ['{"a": [1, 2]}', "[]", "null", None, '"s"', "1", "{}", '{"b":\n1}', "true", "false"],
        "binary": [b"\x00\xff", b"", None, b"abc", b"\n", b"x", b"y", b"z", b"w", b"v"],
    }[name]


def test_markdown_kv_round_trip_is_lossless_for_every_stage_type():
    schema = pa.schema([pa.field(f"c_{t}", parse_type(t).arrow) for t in TYPES])
    table = pa.table({f"c_{t}": pa.array(sample_values(t), parse_type(t).arrow) for t in TYPES}, schema=schema)
    text = markdown_kv.encode_bytes(table, ["c_long"]).decode()
    back = markdown_kv.decode(text, schema)
    for name in schema.names:  # NaN-free values compare exactly, field by field
        assert back.column(name).to_pylist() == table.column(name).to_pylist(), name
    assert text.count("\n## ") + 1 == table.num_rows  # one document per record
    assert text.startswith("## 1\nc_string: plain\n")
    assert 'c_string: "two\\nlines"' in text and "c_string: Ünïcödé ✓" in text


def test_csv_files_round_trip_every_stage_type_but_binary(tmp_path):
    types = [t for t in TYPES if t != "binary"]
    schema = pa.schema([pa.field(f"c_{t}", parse_type(t).arrow) for t in types])
    table = pa.table({f"c_{t}": pa.array(sample_values(t), parse_type(t).arrow) for t in types}, schema=schema)
    target = FileTarget(local_store(tmp_path / "out", "target.connection.path"), "csv", 1024 * 1024, ["t"])
    sink = target.sink("a", schema, run_id="r1", ingest_date=dt.date(2024, 5, 6))
    sink.write(table)
    sink.commit(StateEnvelope(run_id="n1"))
    manifest = latest_manifest(target.dataset("a"))
    assert manifest.file_format == "csv" and [f["path"] for f in manifest.files] == ["ingest_date=2024-05-06/r1-0.csv"]
    path = tmp_path / "out/t/a" / manifest.files[0]["path"]
    with path.open("rb") as stream:
        back = read_csv_file(stream, schema)
    for name in schema.names:
        assert back.column(name).to_pylist() == table.column(name).to_pylist(), name
    text = path.read_text()
    assert text.startswith('"c_string","c_uuid",')  # a header line
    assert '"two\nlines"' in text and '\n"",' in text  # text quoted (a line break kept inside), empty text ""


def test_csv_is_refused_for_binary_columns(tmp_path):
    from dativo_ingest.config.loader import load_job_plan
    from dativo_ingest.sinks.files.sink import file_target
    from tests.acceptance.helpers import make_project, write_yaml

    project = make_project(tmp_path / "p")
    write_yaml(project / "assets/a.yaml", {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "a",
                                            "version": "1.0", "schema": [{"name": "b", "type": "binary"}]})
    job = write_yaml(project / "jobs/acme/j.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "local", "asset": "a",
        "asset_path": "assets/a.yaml", "source": {"files": [{"path": "x.csv"}]},
        "target": {"file_format": "csv", "connection": {"path": "out"}}})
    with pytest.raises(ConfigError, match=r"j.yaml: target.file_format: binary columns \['b'\] cannot be written as "
                                          r"CSV \(use file_format: parquet"):
        file_target(load_job_plan(job, secrets_dir=None))


def test_markdown_kv_nan_and_doc_ids():
    table = pa.table({"a": pa.array([1, 1], pa.int64()), "b": ["x", "y"], "v": [float("nan"), None]})
    text = markdown_kv.encode_bytes(table, ["a", "b"]).decode()
    assert text == "## 1|x\na: 1\nb: x\nv: nan\n\n## 1|y\na: 1\nb: y\n\n"
    back = markdown_kv.decode(text, table.schema)
    assert back.column("v").to_pylist()[1] is None and str(back.column("v").to_pylist()[0]) == "nan"
    assert markdown_kv.encode_bytes(table.select(["b"]), start=5).decode().startswith("## 5\nb: x\n\n## 6\n")
    with pytest.raises(ValueError, match="line 2"):
        markdown_kv.decode("## 1\nno separator here\n", table.schema)


# -- stores and catalogs -----------------------------------------------------------------------------------


def test_flat_minio_and_nested_s3_forms_give_the_same_store():
    flat = {"endpoint": "localhost:9000", "bucket": "test-bucket", "prefix": "raw/x", "access_key_id": "k",
            "secret_access_key": "s3cr3t", "secure": False, "path_style_access": True}
    a = make_store("minio", store_block(flat, "minio"), "target.connection")
    b = nested_store({"s3": {**flat, "endpoint": "http://localhost:9000"}})
    assert (a.endpoint, a.bucket, a.prefix, a.path_style) == ("http://localhost:9000", "test-bucket", "raw/x", True)
    assert (b.endpoint, b.bucket, b.prefix) == (a.endpoint, a.bucket, a.prefix)
    assert "s3cr3t" not in repr(a)
    assert a.url("x.parquet") == "s3://test-bucket/raw/x/x.parquet"
    with pytest.raises(ConfigError, match="bucket"):
        make_store("s3", {"endpoint": "http://h:1"}, "target.connection")
    with pytest.raises(ConfigError, match="keep one"):
        nested_store({"s3": {"bucket": "a"}, "azure_blob": {"container": "c", "account_name": "n"}})


def test_azure_store_strips_the_account_from_an_azurite_endpoint():
    store = azure_store({"account_name": "devstoreaccount1", "container": "c", "account_key": "k",
                         "endpoint": "http://127.0.0.1:10000/devstoreaccount1"}, "target.connection.azure_blob")
    assert store.endpoint == "http://127.0.0.1:10000"
    assert store.url("w") == "abfs://c@devstoreaccount1.dfs.core.windows.net/w"
    props = store.iceberg_properties()
    assert props["adls.blob-storage-authority"] == "127.0.0.1:10000" and props["py-io-impl"].endswith("AzureFileIO")


def test_nessie_uris_become_its_iceberg_rest_endpoint_with_the_branch():
    assert nessie_rest_uri("http://localhost:19120/api/v1", None) == "http://localhost:19120/iceberg/"
    assert nessie_rest_uri("http://localhost:19120/api/v2", "dev") == "http://localhost:19120/iceberg/dev"
    assert nessie_rest_uri("http://localhost:19120/iceberg", "dev") == "http://localhost:19120/iceberg/dev"
    assert nessie_rest_uri("http://localhost:19120/iceberg/main", "dev") == "http://localhost:19120/iceberg/main"
    assert nessie_rest_uri("http://127.0.0.1:8181", "dev") == "http://127.0.0.1:8181"


def _choose(target: dict):
    return choose_catalog(JobTarget.model_validate(target))


def test_catalog_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path))
    s3 = {"bucket": "lake", "endpoint": "http://h:9000", "access_key_id": "k", "secret_access_key": "s"}
    empty = {"s3": {"bucket": "", "endpoint": ""}, "catalog": {"uri": "", "credential": ""}}
    assert _choose({"connection": empty}).name == "dativo"
    assert _choose({"connection": {"s3": s3}}).name == "dativo"  # a filled block alone chooses nothing
    sql = _choose({"connection": {"s3": s3}, "storage": "s3"})
    assert (sql.kind, sql.name, sql.properties["warehouse"]) == ("embedded", "dativo@s3://lake/warehouse",
                                                                 "s3://lake/warehouse")
    assert sql.properties["s3.endpoint"] == "http://h:9000" and sql.properties["s3.force-virtual-addressing"] == "false"
    assert _choose({"connection": {"s3": s3}, "warehouse": "s3://other/p"}).store.bucket == "other"
    rest = _choose({"branch": "dev", "connection": {
        "s3": {"endpoint": "http://h:9000", "access_key_id": "k"},
        "catalog": {"uri": "http://n:19120/api/v1", "credential": "a:b"}}})
    assert (rest.kind, rest.where, rest.store) == ("rest", "target.connection.catalog", None)
    assert rest.properties["uri"] == "http://n:19120/iceberg/dev" and rest.properties["s3.access-key-id"] == "k"
    glue = _choose({"catalog": "glue", "connection": {"s3": s3}})
    assert glue.kind == "glue" and glue.properties["type"] == "glue" and glue.store.bucket == "lake"


# -- plain files on a local disk ------------------------------------------------------------------------------


def _sink(tmp_path, fmt="parquet", write_mode="append", run_id="r1", size=1024 * 1024):
    target = FileTarget(local_store(tmp_path / "out", "target.connection.path", "pre"), fmt, size, ["dom", "prod"])
    schema = pa.schema([("id", pa.int64()), ("v", pa.string()), ("ingest_date", pa.date32())])
    return target.sink("t", schema, run_id=run_id, ingest_date=dt.date(2024, 5, 6), primary_key=["id"],
                       write_mode=write_mode)


def _rows(tmp_path, fmt="parquet"):
    dataset = local_store(tmp_path / "out", "x", "pre").at("dom", "prod", "t")
    manifest = latest_manifest(dataset)
    sink = _sink(tmp_path, fmt)
    return pa.concat_tables([sink._read(f["path"]) for f in manifest.files]).sort_by("id")


@pytest.mark.parametrize("fmt", ["parquet", "markdown_kv", "csv"])
def test_local_merge_rewrites_only_files_holding_the_keys(tmp_path, fmt):
    day = dt.date(2024, 5, 6)
    first = _sink(tmp_path, fmt, "merge", "r1")
    first.write(pa.table({"id": [1, 2], "v": ["a", "b"], "ingest_date": [day, day]}))
    first.commit(StateEnvelope(run_id="n1"))
    second = _sink(tmp_path, fmt, "merge", "r2")
    second.write(pa.table({"id": [3], "v": ["c"], "ingest_date": [day]}))
    second.commit(StateEnvelope(run_id="n2"))
    third = _sink(tmp_path, fmt, "merge", "r3")
    assert third.current_state() == StateEnvelope(run_id="n2")
    third.write(pa.table({"id": [2], "v": ["B"], "ingest_date": [day]}))
    third.delete_keys(pa.table({"id": [3]}))
    assert third.pending_deletes == 1
    commit = third.commit(StateEnvelope(run_id="n3"))
    assert commit.snapshot_id == 3
    rows = _rows(tmp_path, fmt)
    assert rows.column("id").to_pylist() == [1, 2] and rows.column("v").to_pylist() == ["a", "B"]
    root = tmp_path / "out/pre/dom/prod/t"
    ext = {"parquet": ".parquet", "markdown_kv": ".md", "csv": ".csv"}[fmt]
    assert sorted(p.name for p in root.glob(f"ingest_date=2024-05-06/*{ext}")) == [f"r3-0{ext}", f"r3-1{ext}"]
    assert not list(root.glob("_manifests/.tmp-*"))


def test_abort_deletes_what_the_run_wrote(tmp_path):
    sink = _sink(tmp_path)
    sink.write(pa.table({"id": [1], "v": ["a"], "ingest_date": [dt.date(2024, 5, 6)]}))
    sink.abort()
    assert not list((tmp_path / "out").rglob("*.parquet"))
    assert sink.current_state() is None
