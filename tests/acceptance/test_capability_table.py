"""The README's capability table is the registry's, and every cell it claims names a test that runs a job through
it (``dativo_ingest/capability_table.py``; proofs in ``tests/capabilities.yaml``).

Regenerate: ``python -m dativo_ingest.capability_table tests/capabilities.yaml README.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from dativo_ingest.capability_table import END, START, render, rows
from dativo_ingest.matrix import load_registry

REPO = Path(__file__).resolve().parents[2]
PROOFS = yaml.safe_load((REPO / "tests" / "capabilities.yaml").read_text())
ROWS = rows(load_registry(REPO))


def test_the_readme_table_is_the_registrys():
    text = (REPO / "README.md").read_text()
    assert START in text and END in text, "run: python -m dativo_ingest.capability_table tests/capabilities.yaml " \
                                          "README.md"
    shown = START + text.split(START, 1)[1].split(END, 1)[0] + END
    assert shown == render(ROWS, PROOFS), "the registry changed: regenerate the table (see the module docstring)"


def test_every_proof_is_for_a_cell_of_the_registry():
    assert set(PROOFS) == {row.key for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.key)
def test_each_cell_names_a_test_that_exists_or_why_none_runs(row):
    proof = PROOFS[row.key]
    if "::" not in proof:
        assert len(proof) > 20  # a reason, in words
        return
    path, name = proof.split("::")
    tree = ast.parse((REPO / path).read_text())
    assert name in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}, proof
