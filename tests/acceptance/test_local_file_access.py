"""Issue #12 class 2: which local files a job may read. Cloud mode: the project's data/ only (symlinks
resolved); every mode: never a secrets folder. One line, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.acceptance.helpers import cli, make_project, write_yaml

ASSET = {"apiVersion": "v3.0.2", "kind": "DataContract", "name": "lines", "version": "1.0", "source_type": "csv",
         "schema": [{"name": "line", "type": "string"}]}


def _project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "p")
    write_yaml(project / "assets/csv/v1.0/lines.yaml", ASSET)
    (project / "data").mkdir()
    (project / "data" / "ok.csv").write_text("line\nhello\n")
    (project / "secrets" / "globex").mkdir(parents=True)
    (project / "secrets" / "globex" / "db.env").write_text("line\nPOSTGRES_PASSWORD=globex-pw-123\n")
    (project / "data" / "etc").symlink_to("/etc")
    (project / "data" / "sneaky.csv").symlink_to(project / "secrets" / "globex" / "db.env")
    return project


def _job(project: Path, path: str) -> Path:
    return write_yaml(project / "jobs" / "acme" / "lines.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "lines",
        "asset_path": "assets/csv/v1.0/lines.yaml", "source": {"files": [{"path": path, "object": "lines"}]}})


@pytest.mark.parametrize(("path", "mode", "words"), [
    ("/etc/passwd", "cloud", "is outside the project's data folder"),
    ("data/etc/passwd", "cloud", "is outside the project's data folder"),      # a symlink out of data/
    ("secrets/globex/db.env", "cloud", "is inside the secrets folder"),
    ("secrets/globex/db.env", "self_hosted", "is inside the secrets folder"),
    ("data/sneaky.csv", "self_hosted", "is inside the secrets folder"),        # a symlink into secrets/
    ("data/s*.csv", "self_hosted", "is inside the secrets folder"),            # a glob matching that symlink
])
def test_forbidden_paths_are_one_line_errors(tmp_path: Path, path: str, mode: str, words: str) -> None:
    project = _project(tmp_path)
    job = _job(project, path)
    home = tmp_path / "home"
    for command in ("check", "run"):
        out = cli(command, "--config", str(job), "--mode", mode, cwd=project, home=home)
        if command == "check" and "*" in path:
            assert out.returncode == 0, out.stderr  # a glob is expanded when the source reads, not before
            continue
        assert out.returncode == 2, out.stdout + out.stderr
        lines = [line for line in out.stderr.splitlines() if line.startswith("ERROR")]
        assert len(lines) == 1 and words in lines[0] and "source.files[0].path" in lines[0], out.stderr
        assert "globex-pw-123" not in out.stdout + out.stderr
    assert not (home / "warehouse").exists() or not any((home / "warehouse").rglob("*.parquet"))


def test_the_data_folder_is_readable_in_cloud_mode_and_any_path_self_hosted(tmp_path: Path) -> None:
    project = _project(tmp_path)
    out = cli("run", "--config", str(_job(project, "data/ok.csv")), "--mode", "cloud", cwd=project,
              home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("line\nthere\n")
    out = cli("run", "--config", str(_job(project, str(outside))), cwd=project, home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    assert os.path.exists(outside)
