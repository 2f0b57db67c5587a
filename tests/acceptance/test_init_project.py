"""A project of one's own from the wheel: ``init`` in an empty folder, then the command it prints, as printed.

The wheel is built and unpacked outside the repository as in test_wheel_install.py (its ``wheel_site``), so
the templates must come from the package data, not from the repository's folders.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.acceptance.test_wheel_install import wheel_site  # noqa: F401 - the fixture: the unpacked wheel


def _dativo(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``dativo_ingest ARGS`` from the wheel (``python -m``: an unpacked wheel has no console script)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "dativo_ingest", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_init_then_the_printed_command_runs_the_demo_in_an_empty_folder(wheel_site: Path,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = _dativo(wheel_site, work, "init", "myproject")
    assert out.returncode == 0, out.stderr
    printed = out.stdout.strip().splitlines()[-1].strip()
    assert printed == "cd myproject && dativo_ingest run --config jobs/acme/csv_employee_to_iceberg.yaml"

    cd, run = (shlex.split(part) for part in printed.split(" && "))
    assert cd[0] == "cd" and run[0] == "dativo_ingest"
    project = work / cd[1]
    demo = _dativo(wheel_site, project, *run[1:])
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout.splitlines()[-1])["rows_written"] == 20
    assert (project / ".local" / "warehouse").is_dir()  # the embedded catalog, inside the project

    checked = _dativo(wheel_site, project, "validate")
    assert checked.returncode == 0, checked.stderr
    again = _dativo(wheel_site, work, "init", "myproject")
    assert again.returncode == 2 and "is not empty" in again.stderr
