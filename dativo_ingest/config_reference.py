"""``docs/CONFIG_REFERENCE.md``, generated from the pydantic models (through their JSON Schemas).

``python -m dativo_ingest.config_reference [--check] [PROJECT_DIR]`` writes the file (or, with ``--check``, exits 1
when it differs from what the models say). One section per config kind of ``export_schemas`` (job, asset,
connector recipe, registry, runner, and any kind added there later); one table per object, with each key's type,
whether it is required, its default, its constraints and its meaning: the field's ``description``, else the
``#:`` comment above the field in the model's source.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from dativo_ingest.config.export_schemas import MODELS, SCHEMA_FILES, generate_schema

DOC_FILE = Path("docs") / "CONFIG_REFERENCE.md"
GENERATE = "python -m dativo_ingest.config_reference"
#: kind -> (heading, where the files live); a kind not listed gets "<kind> configuration", configs/<kind>.yaml
SECTIONS: dict[str, tuple[str, str]] = {
    "job": ("Job configuration", "`jobs/<tenant>/*.yaml`"),
    "asset": ("Asset definitions", "`assets/<source_type>/v<version>/*.yaml` (ODCS v3.0.2 with dativo extensions)"),
    "connector": ("Connector recipes", "`connectors/sources/*.yaml`, `connectors/targets/*.yaml`"),
    "registry": ("Connector registry", "`registry/connectors.yaml`"),
    "runner": ("Runner configuration", "`configs/runner.yaml`"),
    "policy": ("Governance policy", "`configs/policy.yaml` (optional: without it nothing is restricted)"),
}
_COMMENT = re.compile(r"^\s*#:\s?(.*)$")
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def section(kind: str) -> tuple[str, str]:
    """``(heading, where the files live)`` of a config kind."""
    return SECTIONS.get(kind, (f"{kind.capitalize()} configuration", f"`configs/{kind}.yaml`"))


def _anchor(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as ``-``."""
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).replace(" ", "-")


def _models_below(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model class reachable from ``model``'s fields, by class name (the JSON Schema's ``$defs`` keys)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in found:
                return
            found[annotation.__name__] = annotation
            for info in annotation.model_fields.values():
                visit(info.annotation)
        for arg in get_args(annotation):
            visit(arg)

    visit(model)
    return found


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """``#:`` comments written above the fields of ``model`` and its bases, by field name."""
    out: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            comment = _COMMENT.match(line)
            if comment:
                pending.append(comment.group(1).strip())
                continue
            field = _FIELD.match(line)
            if field and pending:
                out[field.group(1)] = " ".join(pending)
            pending = []
    return out


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"`{_escape(text)}`"


class _Renderer:
    """One kind's JSON Schema as Markdown tables, one per object, linked by anchors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schema = generate_schema(kind)
        self.defs: dict[str, Any] = self.schema.get("$defs", {})
        self.classes = _models_below(MODELS[kind])
        self.order: list[str] = []

    def link(self, name: str) -> str:
        if name not in self.order:
            self.order.append(name)
        return f"[{name}](#{self.kind}-{name.lower()})"

    def type_of(self, prop: dict[str, Any]) -> str:
        if "$ref" in prop:
            return self.link(prop["$ref"].rsplit("/", 1)[-1])
        for key in ("anyOf", "oneOf"):
            if key in prop:
                parts = [self.type_of(p) for p in prop[key] if p.get("type") != "null"]
                return " or ".join(dict.fromkeys(parts)) or "null"
        if "enum" in prop:
            return " \\| ".join(_code(v) for v in prop["enum"])
        if "const" in prop:
            return _code(prop["const"])
        kind = prop.get("type")
        if kind == "array":
            return f"list of {self.type_of(prop.get('items', {}))}"
        if kind == "object":
            extra = prop.get("additionalProperties")
            return f"mapping of {self.type_of(extra)}" if isinstance(extra, dict) else "mapping"
        if isinstance(kind, list):
            return " or ".join(kind)
        return kind or "any"

    def constraints(self, prop: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for variant in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]:
            if "pattern" in variant:
                out.append(f"pattern {_code(variant['pattern'])}")
            for key, words in (("minimum", "≥"), ("maximum", "≤"), ("exclusiveMinimum", ">")):
                if key in variant:
                    out.append(f"{words} {variant[key]}")
            if variant.get("minLength"):
                out.append("not empty")
            if variant.get("minItems"):
                out.append(f"at least {variant['minItems']} item{'s' if variant['minItems'] > 1 else ''}")
            names = variant.get("propertyNames", {}).get("pattern")
            if names:
                out.append(f"keys match {_code(names)}")
        return list(dict.fromkeys(out))

    def table(self, obj: dict[str, Any], model: type[BaseModel] | None) -> list[str]:
        props: dict[str, Any] = obj.get("properties", {})
        required = set(obj.get("required", []))
        comments = field_comments(model) if model is not None else {}
        aliases = {(info.alias or name): name for name, info in model.model_fields.items()} if model else {}
        lines = []
        if obj.get("additionalProperties") is False:
            lines.append("Other keys are errors (usually typos).")
        elif props:
            lines.append("Other keys are kept and passed on.")
        lines += ["", "| key | type | required | default | meaning |", "|---|---|---|---|---|"]
        for key, prop in props.items():
            meaning = _escape(prop.get("description") or comments.get(aliases.get(key, key), ""))
            extra = self.constraints(prop)
            if extra:
                meaning = "; ".join(filter(None, [meaning, ", ".join(extra)]))
            default = _code(prop["default"]) if prop.get("default") not in (None, [], {}) else ""
            lines.append(f"| `{key}` | {self.type_of(prop)} | {'yes' if key in required else ''} | {default} | "
                         f"{meaning} |")
        return lines

    def render(self) -> list[str]:
        heading, where = section(self.kind)
        out = [f"## {heading}", "", f"Files: {where}. JSON Schema: `{SCHEMA_FILES[self.kind]}`.", ""]
        description = self.schema.get("description")
        if description:
            out += [_escape(description), ""]
        out += self.table(self.schema, MODELS[self.kind])
        for extra in self._extra_rules(self.schema):
            out += ["", extra]
        done: set[str] = set()
        while len(done) < len(self.order):
            name = next(n for n in self.order if n not in done)
            done.add(name)
            obj = self.defs.get(name, {})
            out += ["", f'<a id="{self.kind}-{name.lower()}"></a>', "", f"### {heading}: {name}", ""]
            if obj.get("description"):
                out += [_escape(obj["description"]), ""]
            out += self.table(obj, self.classes.get(name))
            for extra in self._extra_rules(obj):
                out += ["", extra]
        return out

    @staticmethod
    def _extra_rules(obj: dict[str, Any]) -> list[str]:
        rules = []
        for group in obj.get("allOf", []):
            choices = [" + ".join(f"`{k}`" for k in alt.get("required", [])) for alt in group.get("oneOf", [])]
            if choices:
                rules.append(f"Exactly one of {', '.join(choices)}.")
        return rules


def render_reference() -> str:
    """The whole of ``docs/CONFIG_REFERENCE.md``."""
    kinds = list(SCHEMA_FILES)
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{GENERATE}` from the pydantic models of dativo_ingest, the same models the",
        "JSON Schemas in schemas/ are generated from. Do not edit by hand: tests/unit/test_config_reference.py",
        "fails when this file is stale. -->",
        "",
        "Every file below is checked against its model and JSON Schema by `dativo_ingest validate` (or",
        "`make schema-validate`), without secrets or servers; `dativo_ingest check --config JOB` also resolves",
        "`${VAR}` (from `secrets/<tenant>/`, then the environment), the registry, the recipes, the asset and the",
        "servers. A `${VAR}` or `${VAR:-default}` may stand in any string value.",
        "",
    ]
    out += [f"- [{section(k)[0]}](#{_anchor(section(k)[0])})" for k in kinds]
    for kind in kinds:
        out += ["", *_Renderer(kind).render()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/CONFIG_REFERENCE.md`` under PROJECT_DIR (default: here); ``--check``: 1 when it is stale."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    path = (Path(args[0]) if args else Path.cwd()) / DOC_FILE
    text = render_reference()
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path}: out of date (run {GENERATE})", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
