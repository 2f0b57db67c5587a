"""Every YAML file of a project against its JSON Schema (``schemas/``) and its pydantic model.

``make schema-validate``, ``dativo_ingest validate [DIR]`` and ``python -m dativo_ingest.config.validate [DIR]``
run this. No secret, server or data is needed: ``${VAR}`` stays unexpanded, as the loader's first pass sees it.
What needs them (a connector in the registry, an asset file that exists, a reachable database) is
``dativo_ingest check``'s job.

Which kind a file is follows from where it lies: ``jobs/**`` jobs, ``assets/**`` assets, ``connectors/**``
recipes, ``registry/*`` registries, and ``configs/<kind>.yaml`` the config of that kind (``runner``, and
``policy`` once its model exists). Each problem is one line, ``<file>: <field>: <problem> (<fix>)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dativo_ingest.config.export_schemas import MODELS, SCHEMA_FILES, render, validate_with_schema
from dativo_ingest.config.loader import parse_model, read_yaml
from dativo_ingest.config.models import Registry
from dativo_ingest.errors import EXIT_FAILURE, EXIT_OK, ConfigError

YAML_SUFFIXES = (".yaml", ".yml")
#: folder -> the kind of every YAML file below it (``configs/`` is named file by file instead)
FOLDER_KINDS: dict[str, str] = {"jobs": "job", "assets": "asset", "connectors": "connector", "registry": "registry"}
CONFIGS_FOLDER = "configs"
REGENERATE = "python -m dativo_ingest.config.export_schemas"


def _deep_runner_check(path: Path) -> None:
    """The runner file's job files and folders must exist (what ``start orchestrated`` checks first)."""
    from dativo_ingest.orchestrator.config import load_runner

    load_runner(path, check_files=True)


def _deep_registry_check(path: Path) -> None:
    """The registry claims no role or engine the code does not implement (``dativo_ingest.matrix``)."""
    from dativo_ingest.matrix import registry_problems

    registry = parse_model(Registry, read_yaml(path), path)
    root = path.resolve().parent.parent  # <project>/registry/connectors.yaml
    problems = [ConfigError(path, problem, field=field, fix=fix) for field, problem, fix in
                registry_problems(registry, root)]
    if problems:
        problems[0].problems = [str(p) for p in problems]  # type: ignore[attr-defined]
        raise problems[0]


#: checks beyond the model that need no secret or server, by kind
DEEP_CHECKS: dict[str, Callable[[Path], None]] = {"runner": _deep_runner_check, "registry": _deep_registry_check}


@dataclass
class Report:
    """What ``validate_project`` checked and every problem it found (one line each)."""

    root: Path
    checked: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def files(self) -> int:
        return sum(len(paths) for paths in self.checked.values())

    def summary(self) -> str:
        """``checked 27 files (5 job, 4 asset, ...): ok`` or ``...: 2 problems``."""
        kinds = ", ".join(f"{len(paths)} {kind}" for kind, paths in self.checked.items())
        verdict = "ok" if self.ok else f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        return f"checked {self.files} files ({kinds or 'none'}) against their JSON Schema and model: {verdict}"


def _yaml_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if path.is_file() and path.suffix in YAML_SUFFIXES and not any(p.startswith(".") for p in rel):
            yield path


def project_files(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """``(kind, path)`` of every config YAML under ``root``, and the problems of files that have no kind."""
    found: list[tuple[str, Path]] = []
    problems: list[str] = []
    for folder, kind in FOLDER_KINDS.items():
        found += [(kind, path) for path in _yaml_files(root / folder)]
    config_kinds = sorted(k for k in MODELS if k not in FOLDER_KINDS.values())
    for path in _yaml_files(root / CONFIGS_FOLDER):
        if path.parent == root / CONFIGS_FOLDER and path.stem in config_kinds:
            found.append((path.stem, path))
        else:
            problems.append(str(ConfigError(
                _shown(path), "has no JSON Schema (unknown config file)",
                fix=f"configs/ holds {', '.join(k + '.yaml' for k in config_kinds)}; rename or move it")))
    return found, problems


def _shown(path: Path) -> Path:
    """The path as a user would type it: relative to the current directory when below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def validate_file(kind: str, path: Path) -> list[str]:
    """Problems of one file of ``kind`` (empty when the model, the JSON Schema and the deep check accept it)."""
    try:
        data: Any = read_yaml(path)
        parse_model(MODELS[kind], data, path)
    except ConfigError as exc:
        return list(getattr(exc, "problems", None) or [str(exc)])
    rejected = validate_with_schema(kind, data)
    if rejected:  # the model accepts what the schema refuses: the schema is out of step with the model
        return [f"{path}: {line} (rejected by {SCHEMA_FILES[kind]} although the model accepts it: regenerate it "
                f"with {REGENERATE})" for line in rejected]
    deep = DEEP_CHECKS.get(kind)
    if deep is not None:
        try:
            deep(path)
        except ConfigError as exc:
            return list(getattr(exc, "problems", None) or [str(exc)])
    return []


def stale_schema_files(root: Path) -> list[str]:
    """Problems of the project's ``schemas/`` files that differ from the models (those absent are fine)."""
    out = []
    for kind, rel in SCHEMA_FILES.items():
        path = root / rel
        if path.is_file() and path.read_text(encoding="utf-8") != render(kind):
            out.append(str(ConfigError(_shown(path), f"differs from the {kind} model of this dativo_ingest",
                                       fix=f"regenerate it: {REGENERATE} {root}")))
    return out


def validate_project(root: Path) -> Report:
    """Validate every config YAML of the project at ``root``; never raises for a bad file."""
    root = Path(root)
    report = Report(root=root)
    if not root.is_dir():
        report.problems.append(str(ConfigError(root, "is not a directory", fix="pass the project folder")))
        return report
    report.problems += stale_schema_files(root)
    files, unknown = project_files(root)
    report.problems += unknown
    for kind, path in files:
        report.checked.setdefault(kind, []).append(path)
        report.problems += validate_file(kind, _shown(path))
    if not files and not unknown:
        report.problems.append(str(ConfigError(
            root, "holds no configuration files", fix="expected jobs/, assets/, connectors/, registry/ or configs/ "
                                                       "(dativo_ingest init writes a project)")))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m dativo_ingest.config.validate [DIR]``: the problems on stderr, the summary on stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    report = validate_project(Path(args[0]) if args else Path.cwd())
    for line in report.problems:
        print(f"ERROR: {line}", file=sys.stderr)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
