"""The seed guide's Quick Reference, command by command: each exists as written (and `pytest tests/test_*.py -v`,
one of them, runs this file). What each command does is tested elsewhere: the smoke script in
acceptance/test_smoke_script.py, `make schema-validate` in unit/test_validate.py, the jobs in acceptance/.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO.parent / "shared" / "SETUP_GUIDE.md"


def _cheat_sheet() -> list[str]:
    if not GUIDE.is_file():
        pytest.skip(f"the seed guide is not at {GUIDE}")
    text = GUIDE.read_text(encoding="utf-8")
    block = text.split("### Command Cheat Sheet", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _help(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dativo_ingest", *args, "--help"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_every_dativo_ingest_command_of_the_cheat_sheet_takes_its_options() -> None:
    commands = [shlex.split(line) for line in _cheat_sheet() if line.startswith("dativo_ingest ")]
    assert len(commands) >= 3
    for words in commands:
        sub = [w for w in words[1:3] if not w.startswith("-")][:2 if words[1] == "start" else 1]
        text = _help(*sub)
        for flag in (w for w in words if w.startswith("--")):
            assert re.search(rf"{re.escape(flag)}\b", text), f"{' '.join(words)}: {flag} is not an option"


def test_the_smoke_script_the_unit_tests_and_make_schema_validate_exist_as_written() -> None:
    lines = _cheat_sheet()
    assert "./tests/run_all_smoke_tests.sh" in lines
    script = REPO / "tests" / "run_all_smoke_tests.sh"
    assert script.is_file() and os.access(script, os.X_OK)
    pytest_line = next(line for line in lines if line.startswith("pytest "))
    pattern = next(word for word in shlex.split(pytest_line) if "*" in word)
    assert sorted(REPO.glob(pattern)), f"{pytest_line}: {pattern} matches no file"
    assert "make schema-validate" in lines
    dry = subprocess.run(["make", "-n", "schema-validate"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "dativo_ingest.config.validate" in dry.stdout


def test_the_missing_dependencies_commands_exist() -> None:
    assert (REPO / "requirements.txt").is_file()  # pip install -r requirements.txt
    out = subprocess.run([sys.executable, "-m", "dativo_ingest.cli", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "run" in out.stdout
