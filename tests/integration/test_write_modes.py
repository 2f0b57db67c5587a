"""Write modes, partition transforms and cursor incrementals against the real embedded Iceberg catalog."""

import json

import pytest

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml


def _setup(tmp_path, *, schema, partitioning=(), source_extra=None, target=None):
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "target": {"partitioning": list(partitioning)}, "schema": schema})
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg",
        "asset": "t", "asset_path": "assets/csv/v1.0/t.yaml",
        "source": {"files": [{"path": "data/t.csv"}], **(source_extra or {})}, "target": target or {}})
    (project / "data").mkdir()
    return project, job


def _run(project, job, home):
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_partition_transforms_are_in_the_table_spec(tmp_path):
    schema = [{"name": "id", "type": "long"}, {"name": "at", "type": "timestamp"}, {"name": "name", "type": "string"}]
    project, job = _setup(tmp_path, schema=schema,
                          partitioning=["day(at)", "bucket(4, id)", "truncate(2, name)", "ingest_date"])
    (project / "data/t.csv").write_text("id,at,name\n1,2024-01-01 10:00:00,alpha\n2,2024-01-02 11:00:00,beta\n")
    _run(project, job, tmp_path / "home")
    table = catalog(tmp_path / "home").load_table("acme.t")
    transforms = [(f.name, str(f.transform)) for f in table.spec().fields]
    assert transforms == [("at_day", "day"), ("id_bucket", "bucket[4]"), ("name_truncate", "truncate[2]"),
                          ("ingest_date", "identity")]
    assert table.scan().to_arrow().num_rows == 2
    files = table.inspect.files()
    assert files.num_rows == 2  # one file per partition


def test_overwrite_replaces_the_table_each_run(tmp_path):
    project, job = _setup(tmp_path, schema=[{"name": "id", "type": "long"}], target={"write_mode": "overwrite"})
    home = tmp_path / "home"
    (project / "data/t.csv").write_text("id\n1\n2\n3\n")
    _run(project, job, home)
    (project / "data/t.csv").write_text("id\n7\n8\n")
    summary = _run(project, job, home)
    assert summary["rows_written"] == 2
    assert sorted(table_rows(home, "acme.t").column("id").to_pylist()) == [7, 8]
    _run(project, job, home)  # a full refresh reads the unchanged file again, and still replaces
    assert sorted(table_rows(home, "acme.t").column("id").to_pylist()) == [7, 8]


def test_merge_by_composite_primary_key_updates_in_place(tmp_path):
    schema = [{"name": "a", "type": "long", "primary_key": True}, {"name": "b", "type": "string", "primary_key": True},
              {"name": "v", "type": "double"}]
    project, job = _setup(tmp_path, schema=schema)
    home = tmp_path / "home"
    (project / "data/t.csv").write_text("a,b,v\n1,x,1.0\n1,y,2.0\n2,x,3.0\n")
    _run(project, job, home)
    (project / "data/t.csv").write_text("a,b,v\n1,y,20.0\n3,z,4.0\n1,y,21.0\n")
    summary = _run(project, job, home)
    rows = sorted((r["a"], r["b"], r["v"]) for r in table_rows(home, "acme.t").select(["a", "b", "v"]).to_pylist())
    assert rows == [(1, "x", 1.0), (1, "y", 21.0), (2, "x", 3.0), (3, "z", 4.0)]
    assert summary["rows_written"] == 2  # the in-file duplicate of (1, y) was collapsed, last row wins


@pytest.mark.parametrize("lookback", [None, "1d"])
def test_cursor_incremental_reads_only_newer_rows(tmp_path, lookback):
    schema = [{"name": "id", "type": "long", "primary_key": True}, {"name": "updated_at", "type": "timestamp"},
              {"name": "v", "type": "string"}]
    incremental = {"strategy": "updated_at", "cursor_field": "updated_at"}
    if lookback:
        incremental["lookback"] = lookback
    project, job = _setup(tmp_path, schema=schema, source_extra={"incremental": incremental})
    home = tmp_path / "home"
    (project / "data/t.csv").write_text("id,updated_at,v\n1,2024-01-01 00:00:00,a\n2,2024-01-05 00:00:00,b\n")
    _run(project, job, home)
    state = json.loads(cli("state", "show", "--config", str(job), cwd=project, home=home).stdout)["state"]
    assert state["streams"]["t"]["cursor"] == {"field": "updated_at", "value": "2024-01-05T00:00:00"}
    # the file is rewritten: row 1 unchanged, row 2 updated late but inside a 1-day lookback, row 3 new
    (project / "data/t.csv").write_text(
        "id,updated_at,v\n1,2024-01-01 00:00:00,a\n2,2024-01-04 12:00:00,B\n3,2024-01-06 00:00:00,c\n")
    summary = _run(project, job, home)
    rows = {r["id"]: r["v"] for r in table_rows(home, "acme.t").to_pylist()}
    if lookback:
        assert summary["rows_written"] == 2 and rows == {1: "a", 2: "B", 3: "c"}
    else:
        assert summary["rows_written"] == 1 and rows == {1: "a", 2: "b", 3: "c"}
