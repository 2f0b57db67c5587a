"""Issue #12 class 11: a secret used to build a path never reaches the state (snapshot, `state show`, the mirror),
table data (a quarantined row's origin) or table metadata — and the job still resumes from that state."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.helpers import cli, make_project, table_rows, write_yaml

TOKEN = "tok-9f8e7d6c5b"


def test_a_secret_path_is_stored_as_its_variable_and_the_job_resumes(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/drops.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "drops", "version": "1.0", "source_type": "csv",
        "target": {"mode": "warn"}, "schema": [{"name": "id", "type": "long"}, {"name": "n", "type": "integer"}]})
    job = write_yaml(project / "jobs/acme/drops.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "drops",
        "asset_path": "assets/csv/v1.0/drops.yaml",
        "source": {"files": [{"path": "data/${DROP_TOKEN}/drop.csv", "object": "drops"}]}})
    (project / "secrets" / "acme").mkdir(parents=True)
    (project / "secrets" / "acme" / "drop.env").write_text(f"DROP_TOKEN={TOKEN}\n")
    (project / "data" / TOKEN).mkdir(parents=True)
    (project / "data" / TOKEN / "drop.csv").write_text("id,n\n1,1\n2,two\n3,3\n")
    home = tmp_path / "home"
    first = cli("run", "--config", str(job), "--secrets-dir", "secrets", cwd=project, home=home)
    assert first.returncode == 1, first.stderr
    assert TOKEN not in first.stdout + first.stderr
    shown = cli("state", "show", "--config", str(job), "--secrets-dir", "secrets", cwd=project, home=home)
    assert shown.returncode == 0 and TOKEN not in shown.stdout and "${DROP_TOKEN}" in shown.stdout
    mirror = json.loads(Path(json.loads(shown.stdout)["mirror"]).read_text())
    assert TOKEN not in json.dumps(mirror)
    origins = table_rows(home, "acme.drops__quarantine").column("_dativo_origin").to_pylist()
    assert origins and all(TOKEN not in o and "${DROP_TOKEN}" in o for o in origins)
    for path in (home / "warehouse").rglob("*.json"):  # table metadata: snapshot summaries, properties
        assert TOKEN not in path.read_text(), path
    again = cli("run", "--config", str(job), "--secrets-dir", "secrets", cwd=project, home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["rows_read"] == 0  # the file is known: state resumed
    assert table_rows(home, "acme.drops").num_rows == 2
