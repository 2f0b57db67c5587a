"""``state show`` and ``state reset`` for every target kind, through the CLI: an Iceberg table (snapshot summary),
plain Parquet files on a local disk and on S3 (SeaweedFS; the state lives in the run manifest)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from dativo_ingest.sinks.files.manifest import latest_manifest, manifest_names
from dativo_ingest.storage.stores import ObjectStore, local_store, s3_store
from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml

CSV = "id,name\n1,Ana\n2,Bo\n3,Cy\n"


def _project(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> tuple[Path, Path, ObjectStore | None]:
    """A csv → ``kind`` job (merge by ``id``); the plain-file dataset's store (None for Iceberg)."""
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/t.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "t", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long", "primary_key": True}, {"name": "name", "type": "string"}]})
    target: dict = {}
    store = None
    if kind == "local":
        target = {"connection": {"path": "out"}}
        store = local_store(project / "out", "target.connection.path").at("acme", "t")
    elif kind == "s3":
        server = request.getfixturevalue("seaweedfs")
        prefix = f"state-{uuid.uuid4().hex[:8]}"
        target = {"connection": {"bucket": server.bucket, "prefix": prefix}}
        (project / "secrets/acme").mkdir(parents=True)
        (project / "secrets/acme/s3.env").write_text(
            f"S3_ENDPOINT={server.s3_endpoint}\nAWS_ACCESS_KEY_ID={server.access_key}\n"
            f"AWS_SECRET_ACCESS_KEY={server.secret_key}\nAWS_REGION=us-east-1\n")
        store = s3_store({"bucket": server.bucket, "prefix": prefix, "endpoint": server.s3_endpoint,
                          "access_key_id": server.access_key, "secret_access_key": server.secret_key},
                         "target").at("acme", "t")
    job = write_yaml(project / "jobs/acme/t.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": kind, "asset": "t",
        "asset_path": "assets/csv/v1.0/t.yaml", "target": target,
        "source": {"files": [{"path": "data/t.csv", "object": "t"}], "incremental": {"strategy": "file_modified_time"}},
    })
    (project / "data").mkdir()
    (project / "data/t.csv").write_text(CSV)
    return project, job, store


def _cli_json(project: Path, home: Path, *args: str) -> dict:
    out = cli(*args, cwd=project, home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1] if args[0] == "run" else out.stdout)


def _ids(home: Path, store: ObjectStore | None) -> list[int]:
    """The ids the job's data holds now (the Iceberg table, or the files the newest manifest lists)."""
    if store is None:
        return sorted(table_rows(home, "acme.t").column("id").to_pylist())
    import pyarrow.parquet as pq

    manifest = latest_manifest(store)
    assert manifest is not None
    tables = [pq.read_table(store.fs_path(f["path"]), filesystem=store.filesystem) for f in manifest.files]
    return sorted(i for t in tables for i in t.column("id").to_pylist())


@pytest.mark.parametrize("kind", ["iceberg", "local", "s3"])
def test_state_show_and_reset_work_for_every_target_kind(tmp_path, request, kind):
    project, job, store = _project(tmp_path, kind, request)
    home = tmp_path / "home"
    # nothing committed yet: nothing to show, nothing to reset
    empty = _cli_json(project, home, "state", "show", "--config", str(job))
    assert empty["state"] is None and empty["snapshot_id"] is None
    assert _cli_json(project, home, "state", "reset", "--config", str(job), "--yes") == {
        "table": empty["table"], "reset": False, "reason": "no committed state"}

    first = _cli_json(project, home, "run", "--config", str(job))
    assert first["rows_written"] == 3
    shown = _cli_json(project, home, "state", "show", "--config", str(job))
    if store is None:
        assert shown["table"] == "acme.t"
    else:
        assert shown["table"] == store.url() and shown["snapshot_id"] == 1  # the run manifest's sequence
    assert shown["snapshot_id"] == first["snapshot_id"]
    assert "data/t.csv" in shown["state"]["streams"]["t"]["files"]
    assert shown["state"]["run_id"] == first["run_id"]
    mirror = home / "state/acme/t.json"
    assert json.loads(mirror.read_text()) == shown["state"]
    assert _cli_json(project, home, "run", "--config", str(job))["rows_written"] == 0  # the state is honoured

    before = latest_manifest(store) if store is not None else None
    reset = _cli_json(project, home, "state", "reset", "--config", str(job), "--yes")
    assert reset["reset"] is True and reset["table"] == shown["table"]
    assert not mirror.exists()
    after = _cli_json(project, home, "state", "show", "--config", str(job))
    assert after["snapshot_id"] == reset["snapshot_id"] != shown["snapshot_id"]
    assert after["state"]["streams"] == {} and after["state"]["run_id"] == "state-reset"
    assert _ids(home, store) == [1, 2, 3]  # no data change
    if store is not None:  # a new manifest with the same files and the empty state
        manifest = latest_manifest(store)
        assert manifest.sequence == before.sequence + 1 == reset["snapshot_id"]
        assert manifest.files == before.files and manifest.added == [] and manifest.removed == []
        assert json.loads(manifest.state)["streams"] == {}
        assert len(manifest_names(store)) == 2

    again = _cli_json(project, home, "run", "--config", str(job))
    assert again["rows_read"] == 3 and again["rows_written"] == 3  # read from the beginning
    assert _ids(home, store) == [1, 2, 3]  # merge by primary key: re-read rows replace themselves
