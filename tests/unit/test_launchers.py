from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dativo_ingest.engines.launchers import LocalLauncher, VenvLauncher
from dativo_ingest.engines.launchers.venv import MARKER, venv_slug
from dativo_ingest.errors import InfrastructureError


def test_venv_slug_names_package_and_version() -> None:
    assert venv_slug("airbyte-source-faker==6.2.0") == "airbyte-source-faker-6.2.0"
    assert venv_slug("tap-spreadsheets") == "tap-spreadsheets-latest"
    odd = venv_slug("git+https://github.com/MeltanoLabs/tap-postgres.git@v0.1.0")
    assert odd.startswith("tap-postgres.git-") and len(odd) < 70


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "hello_tap"
    (pkg / "hello_tap").mkdir(parents=True)
    (pkg / "hello_tap" / "__init__.py").write_text(
        "import sys\ndef main():\n    print('{\"type\": \"LOG\", \"args\": %r}' % (sys.argv[1:],))\n"
        "    print('oops', file=sys.stderr)\n    sys.exit(3)\n")
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "hello-tap"\nversion = "0.1"\n[project.scripts]\nhello-tap = "hello_tap:main"\n')
    return pkg


def test_venv_launcher_installs_once_and_runs(tmp_path: Path) -> None:
    launcher = VenvLauncher(str(_package(tmp_path)), "hello-tap", root=tmp_path / "connectors")
    launcher.ensure_ready()
    assert (launcher.venv / MARKER).is_file()
    marker_time = (launcher.venv / MARKER).stat().st_mtime_ns
    launcher.ensure_ready()  # second time: nothing reinstalled
    assert (launcher.venv / MARKER).stat().st_mtime_ns == marker_time
    with launcher.start(["read", "--config", "c.json"]) as proc:
        lines = list(proc.lines())
        assert proc.wait() == 3
        assert proc.stderr_tail() == ["oops"]
    assert lines == [b'{"type": "LOG", "args": [\'read\', \'--config\', \'c.json\']}\n']
    # a half-made venv (no marker) is rebuilt, not used
    (launcher.venv / MARKER).unlink()
    launcher.ensure_ready()
    assert (launcher.venv / MARKER).is_file()


def test_failed_install_removes_the_half_made_venv(tmp_path: Path) -> None:
    launcher = VenvLauncher("dativo-surely-no-such-package-xyz==0.0.1", "nothing", root=tmp_path / "c")
    with pytest.raises(InfrastructureError, match="pip install dativo-surely-no-such-package-xyz==0.0.1 failed"):
        launcher.ensure_ready()
    assert not launcher.venv.exists()


def test_local_launcher_runs_a_script_and_names_a_missing_one(tmp_path: Path) -> None:
    script = tmp_path / "tap.py"
    script.write_text("print('hi')\n")
    with LocalLauncher(script, prefix=[sys.executable]).start([]) as proc:
        assert list(proc.lines()) == [b"hi\n"] and proc.wait() == 0
    with pytest.raises(InfrastructureError, match="not found or not executable"):
        LocalLauncher(tmp_path / "missing").ensure_ready()
