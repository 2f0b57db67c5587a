"""JSON Schemas generated from the pydantic models, so the two can never disagree.

``python -m dativo_ingest.config.export_schemas [--check] [PROJECT_DIR]`` writes (or with ``--check``
compares) ``schemas/job.schema.json``, ``schemas/odcs/dativo-odcs-3.0.2-extended.schema.json``,
``schemas/connector.schema.json``, ``schemas/registry.schema.json``, ``schemas/runner.schema.json`` and
``schemas/policy.schema.json``.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from dativo_ingest.config.models import MODELS as CONFIG_MODELS
from dativo_ingest.config.policy import PolicyConfig
from dativo_ingest.orchestrator.config import RunnerConfig

MODELS = {**CONFIG_MODELS, "runner": RunnerConfig, "policy": PolicyConfig}

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILES: dict[str, str] = {
    "job": "schemas/job.schema.json",
    "asset": "schemas/odcs/dativo-odcs-3.0.2-extended.schema.json",
    "connector": "schemas/connector.schema.json",
    "registry": "schemas/registry.schema.json",
    "runner": "schemas/runner.schema.json",
    "policy": "schemas/policy.schema.json",
}
_TITLES = {
    "job": "dativo-ingest job",
    "asset": "ODCS v3.0.2 data contract with dativo extensions",
    "connector": "dativo-ingest connector recipe",
    "registry": "dativo-ingest connector registry",
    "runner": "dativo-ingest runner (orchestrated mode)",
    "policy": "dativo-ingest governance policy (configs/policy.yaml)",
}


def generate_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of one config kind: job, asset, connector, registry, runner or policy."""
    body = MODELS[kind].model_json_schema(by_alias=True, mode="validation")
    body["title"] = _TITLES[kind]
    return {"$schema": DRAFT, "$id": SCHEMA_FILES[kind], **body}


def render(kind: str) -> str:
    return json.dumps(generate_schema(kind), indent=2, ensure_ascii=False) + "\n"


@cache
def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(generate_schema(kind))


def validate_with_schema(kind: str, data: Any) -> list[str]:
    """Problems JSON Schema finds in ``data`` (empty when valid), each as ``<field>: <message>``."""
    out = []
    for err in sorted(_validator(kind).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"{where}: {err.message}")
    return out


def write_schemas(project_dir: Path) -> list[Path]:
    written = []
    for kind, rel in SCHEMA_FILES.items():
        path = Path(project_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(project_dir: Path) -> list[Path]:
    """Schema files that are missing or differ from freshly generated ones."""
    stale = []
    for kind, rel in SCHEMA_FILES.items():
        path = Path(project_dir) / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != render(kind):
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    project_dir = Path(args[0]) if args else Path.cwd()
    if check:
        stale = stale_schemas(project_dir)
        for path in stale:
            print(f"{path}: out of date (run python -m dativo_ingest.config.export_schemas)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas(project_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
