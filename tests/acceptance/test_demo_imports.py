"""The demo ``run`` imports what it needs and not what other commands, targets or connectors need.

Start-up is a large part of a small run; an import that creeps back onto the run path shows here, by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dativo_ingest.init import init_project

#: imported by other commands or other kinds of jobs only
NOT_ON_THE_RUN_PATH = [
    "typer",  # a plain `run` is parsed without Typer (cli.plain_run_args)
    "dativo_ingest.init",  # `init`'s package (it imports the JSON Schema export and jsonschema)
    "dativo_ingest.config.export_schemas",
    "jsonschema",
    "dativo_ingest.sinks.database.sink",  # database targets
    "dativo_ingest.sinks.files.sink",  # plain-file targets
    "dativo_ingest.engines.native.rest.spec",  # REST sources (its pydantic models)
    "dativo_ingest.config.odcs",  # canonical ODCS contracts (the demo asset is flat)
    "dativo_ingest.orchestrator.service",
    "dagster",
    # clean text whose keys do not repeat, into a new table: the stage parses it in Arrow, no merge to plan, no rule
    "duckdb",
    "dativo_ingest.quality.evaluate",
]

RUN = textwrap.dedent(
    """
    import atexit, json, sys
    dump = sys.argv[1]
    atexit.register(lambda: open(dump, "w").write(json.dumps(sorted(sys.modules))))
    sys.argv = ["dativo_ingest", *sys.argv[2:]]
    from dativo_ingest.cli import main
    main()
    """
)


@pytest.mark.parametrize("runner_file", [True, False], ids=["with configs/runner.yaml", "without"])
def test_the_demo_run_imports_only_what_it_needs(tmp_path: Path, runner_file: bool) -> None:
    project = tmp_path / "project"
    init_project(project, tenant="acme")
    if not runner_file:  # then there is no concurrency_per_tenant to read, and no runner model to build
        (project / "configs" / "runner.yaml").unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATIVO_")}
    env["DATIVO_HOME"] = str(tmp_path / "home")
    env.pop("STATE_DIR", None)
    modules_file = tmp_path / "modules.json"
    out = subprocess.run([sys.executable, "-c", RUN, str(modules_file), "run", "--config",
                          "jobs/acme/csv_employee_to_iceberg.yaml"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["rows_written"] == 20
    modules = set(json.loads(modules_file.read_text()))
    assert "dativo_ingest.sinks.iceberg.sink" in modules  # the dump is of a real run
    assert [m for m in NOT_ON_THE_RUN_PATH if m in modules] == []
    assert ("dativo_ingest.orchestrator.config" in modules) == runner_file
