"""``configs/policy.yaml``: which connectors a tenant may use, and what ingestion does to classified fields
(keep / mask / hash / drop), enforced by ``check`` and ``run``, recorded in the table (issue #17: 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.acceptance.helpers import catalog, cli, make_project, table_rows, write_yaml

SALT = "pepper-of-acme-0123456789"
PEOPLE = "id,email,phone,note,salary\n1,a@x.io,555-1,hi,10\n2,b@x.io,555-2,yo,20\n"


def _project(tmp_path: Path, policy: dict[str, Any], *, salt: str | None = SALT,
             csv: str = PEOPLE) -> tuple[Path, Path, Path]:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    (project / "data").mkdir()
    (project / "data/people.csv").write_text(csv)
    (project / "secrets/acme").mkdir(parents=True)
    if salt is not None:
        (project / "secrets/acme/policy.env").write_text(f"PII_HASH_SALT={salt}\n")
    write_yaml(project / "configs/policy.yaml", policy)
    write_yaml(project / "assets/people.yaml", {
        "name": "people", "source_type": "csv", "object": "people", "schema": [
            {"name": "id", "type": "integer", "primary_key": True},
            {"name": "email", "type": "string", "classification": "PII"},
            {"name": "phone", "type": "string", "classification": "pii"},
            {"name": "note", "type": "string", "classification": "SENSITIVE"},
            {"name": "salary", "type": "integer", "classification": "CONFIDENTIAL"}]})
    job = write_yaml(project / "jobs/acme/people.yaml", {
        "source_connector": "csv", "target_connector": "iceberg", "asset": "people",
        "asset_path": "assets/people.yaml", "schema_validation_mode": "warn",
        "source": {"files": [{"path": "data/people.csv", "object": "people"}]}})
    return project, home, job


def _hash(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def test_hash_mask_and_drop_are_applied_and_recorded(tmp_path: Path) -> None:
    project, home, job = _project(tmp_path, {"defaults": {"classifications": {"PII": "hash", "SENSITIVE": "mask",
                                                                               "CONFIDENTIAL": "drop"}}})
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 0, run.stderr
    rows = table_rows(home, "acme.people").sort_by("id").to_pylist()
    assert [r["email"] for r in rows] == [_hash("a@x.io"), _hash("b@x.io")]
    assert [r["phone"] for r in rows] == [_hash("555-1"), _hash("555-2")]  # classes match ignoring case
    assert [r["note"] for r in rows] == ["***", "***"]
    assert "salary" not in rows[0]  # dropped: not even a column
    table = catalog(home).load_table("acme.people")
    assert json.loads(table.properties["dativo.policy"]) == {"email": "hash", "phone": "hash", "note": "mask",
                                                             "salary": "drop"}
    for path in (home / "warehouse").rglob("*"):  # neither the salt nor a raw value is stored anywhere
        if path.is_file():
            data = path.read_bytes()
            assert SALT.encode() not in data and b"a@x.io" not in data and b"555-1" not in data, path


def test_quarantined_rows_are_protected_too(tmp_path: Path) -> None:
    project, home, job = _project(tmp_path, {"defaults": {"classifications": {"PII": "hash", "SENSITIVE": "mask"}}},
                                  csv="id,email,phone,note,salary\n1,a@x.io,555-1,hi,10\nnope,c@x.io,555-3,sh,30\n")
    run = cli("run", "--config", str(job), cwd=project, home=home)
    assert run.returncode == 1, run.stderr  # warn mode: one row quarantined
    quarantined = table_rows(home, "acme.people__quarantine").to_pylist()
    assert len(quarantined) == 1
    row = quarantined[0]
    assert row["email"] == _hash("c@x.io") and row["note"] == "***" and row["salary"] == "30"
    for path in (home / "warehouse").rglob("*.parquet"):
        text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        assert "c@x.io" not in text and "555-3" not in text


def test_check_refuses_connectors_the_tenant_may_not_use(tmp_path: Path) -> None:
    project, home, job = _project(tmp_path, {"tenants": {"acme": {"targets": ["s3"]}}})
    out = cli("check", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert "tenant 'acme' may not use target connector 'iceberg'" in line
    assert "tenants.acme.targets" in line and "policy.yaml" in line
    other = _project(tmp_path / "b", {"defaults": {"sources": ["postgres"]}, "tenants": {"acme": {}}})
    out = cli("check", "--config", str(other[2]), cwd=other[0], home=other[1])
    assert out.returncode == 2 and "may not use source connector 'csv'" in out.stderr
    assert "defaults.sources" in out.stderr


def test_a_missing_or_short_salt_and_impossible_actions_are_refused(tmp_path: Path) -> None:
    hashing = {"defaults": {"classifications": {"PII": "hash"}}}
    project, home, job = _project(tmp_path / "a", hashing, salt=None)
    out = cli("check", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2 and "Missing required environment variable: PII_HASH_SALT" in out.stderr
    project, home, job = _project(tmp_path / "b", hashing, salt="short")
    out = cli("run", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2 and "shorter than 16 characters" in out.stderr and "short" not in out.stderr.split(
        "shorter")[0].split("PII_HASH_SALT")[-1]
    assert not (home / "warehouse").exists() or not any((home / "warehouse").rglob("*.parquet"))
    project, home, job = _project(tmp_path / "c", {"defaults": {"classifications": {"CONFIDENTIAL": "hash"}}})
    out = cli("check", "--config", str(job), cwd=project, home=home)
    assert out.returncode == 2 and "field 'salary' is integer; hash applies to string fields" in out.stderr


def test_the_salt_is_redacted_whatever_its_name_and_wherever_it_comes_from(tmp_path: Path) -> None:
    policy = {"defaults": {"classifications": {"PII": "hash"}, "hash_salt_secret": "ACME_PEPPER"}}
    project, home, job = _project(tmp_path, policy, salt=None,
                                  csv=f"id,email,phone,note,salary\n{SALT},a@x.io,555-1,hi,10\n")
    job_text = job.read_text().replace("schema_validation_mode: warn", "schema_validation_mode: strict")
    job.write_text(job_text)
    out = cli("run", "--config", str(job), cwd=project, home=home, env={"ACME_PEPPER": SALT})
    assert out.returncode == 2 and "is not a integer" in out.stderr  # the message quotes the bad value …
    assert SALT not in out.stderr + out.stdout  # … with the salt masked, though its name looks like no secret
