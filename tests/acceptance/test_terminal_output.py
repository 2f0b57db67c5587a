"""On a terminal, log lines print above the live progress display of ``run --job-dir``, never inside it
(issue #17: 4). The CLI runs under a pseudo-terminal, as a user's shell would run it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.acceptance.helpers import make_project, write_yaml

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ROWS = 600_000


def _run_in_pty(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), out.decode("utf-8", "replace")


def test_log_lines_never_land_inside_the_live_progress_line(tmp_path: Path) -> None:
    project, home = make_project(tmp_path / "project"), tmp_path / "home"
    (project / "data").mkdir()
    with (project / "data/big.csv").open("w") as f:  # big enough that progress is on screen while jobs log
        f.write("id,name\n")
        f.writelines(f"{i},name {i}\n" for i in range(ROWS))
    write_yaml(project / "assets/big.yaml", {"name": "big", "source_type": "csv", "object": "big",
                                             "schema": [{"name": "id", "type": "integer"},
                                                        {"name": "name", "type": "string"}]})
    for name in ("one", "two", "three"):
        write_yaml(project / f"jobs/acme/{name}.yaml", {
            "source_connector": "csv", "target_connector": "iceberg", "asset": "big",
            "asset_path": "assets/big.yaml", "target": {"write_mode": "append", "commit_every_rows": 100_000},
            "source": {"files": [{"path": "data/big.csv", "object": "big"}]}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env.update({"DATIVO_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "160"})
    code, output = _run_in_pty([sys.executable, "-m", "dativo_ingest", "run", "--job-dir", "jobs/acme",
                                "--workers", "2"], project, env)
    assert code == 0, output[-3000:]
    segments = [ANSI.sub("", s) for s in re.split(r"[\r\n]", output)]
    progress = [s for s in segments if "rows/s" in s]
    logs = [s for s in segments if re.search(r"\d\d:\d\d:\d\d (INFO|WARNING) ", s)]
    assert progress, "no live progress was shown"  # the display was on screen …
    assert any("committed snapshot" in s for s in logs)  # … while the jobs logged
    mixed = [s for s in segments if "rows/s" in s and re.search(r"(INFO|WARNING) ", s)]
    assert mixed == [], mixed[:3]
