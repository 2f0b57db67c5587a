"""docs/CONFIG_REFERENCE.md is generated from the models: stale means a failing test, and every key is in it."""

from __future__ import annotations

from pathlib import Path

from dativo_ingest.config.export_schemas import MODELS, SCHEMA_FILES, generate_schema
from dativo_ingest.config_reference import DOC_FILE, GENERATE, main, render_reference, section

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_reference_is_what_the_models_say() -> None:
    committed = (REPO / DOC_FILE).read_text(encoding="utf-8")
    assert committed == render_reference(), f"docs/CONFIG_REFERENCE.md is stale: run {GENERATE}"


def test_every_kind_and_every_key_of_every_object_is_documented() -> None:
    text = render_reference()
    for kind in SCHEMA_FILES:
        assert f"## {section(kind)[0]}" in text and SCHEMA_FILES[kind] in text
        schema = generate_schema(kind)
        for obj in [schema, *schema.get("$defs", {}).values()]:
            for key in obj.get("properties", {}):
                assert f"| `{key}` |" in text, f"{kind}: key {key} is missing"
    assert set(MODELS) == set(SCHEMA_FILES)


def test_the_guides_links_have_their_anchors_and_check_reports_a_stale_file(tmp_path: Path) -> None:
    text = render_reference()
    assert "- [Job configuration](#job-configuration)" in text  # SETUP_GUIDE.md links these two
    assert "- [Asset definitions](#asset-definitions)" in text
    assert main(["--check", str(tmp_path)]) == 1
    assert main([str(tmp_path)]) == 0 and main(["--check", str(tmp_path)]) == 0
    (tmp_path / DOC_FILE).write_text(text.replace("| `asset_path` |", "| `asset_file` |"))
    assert main(["--check", str(tmp_path)]) == 1
