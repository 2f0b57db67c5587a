"""Issue #12 class 16: SIGTERM (what Kubernetes and Dagster send) stops a run like Ctrl-C: one line, the summary,
exit 2, nothing committed and no data file left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.acceptance.helpers import make_project, table_rows, write_yaml


def test_sigterm_mid_run_is_a_clean_stop(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_yaml(project / "assets/csv/v1.0/big.yaml", {
        "apiVersion": "v3.0.2", "kind": "DataContract", "name": "big", "version": "1.0", "source_type": "csv",
        "schema": [{"name": "id", "type": "long"}, {"name": "payload", "type": "string"}]})
    job = write_yaml(project / "jobs/acme/big.yaml", {
        "tenant_id": "acme", "source_connector": "csv", "target_connector": "iceberg", "asset": "big",
        "asset_path": "assets/csv/v1.0/big.yaml", "source": {"files": [{"path": "data/*.csv"}]},
        "target": {"write_mode": "append", "chunk_rows": 20_000}})
    (project / "data").mkdir()
    for part in range(40):
        rows = "\n".join(f"{i},payload-{i}-{'x' * 40}" for i in range(part * 50_000, (part + 1) * 50_000))
        (project / "data" / f"p{part:02d}.csv").write_text("id,payload\n" + rows + "\n")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env["DATIVO_HOME"] = str(home)
    proc = subprocess.Popen([sys.executable, "-m", "dativo_ingest", "run", "--config", str(job)], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    data = home / "warehouse" / "acme" / "big" / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (data.is_dir() and any(data.rglob("*.parquet"))):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert data.is_dir(), "the run wrote no data file in time"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    errors = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert errors == ["ERROR: big: interrupted"], err
    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "interrupted" and summary["exit_code"] == 2
    rows = table_rows(home, "acme.big")
    assert rows is None or rows.num_rows == 0
    assert not any(data.rglob("*.parquet"))  # every file of the open commit deleted
