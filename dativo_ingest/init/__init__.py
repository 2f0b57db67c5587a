"""``dativo_ingest init [DIR]``: a working project of one's own, from templates shipped inside the package.

The project holds the registry, the connector recipes, the demo asset, job and data, ``secrets/<tenant>/``
(git-ignored but for its ``.gitignore``), ``configs/runner.yaml`` and the JSON Schemas of every file, so
``dativo_ingest run --config jobs/<tenant>/csv_employee_to_iceberg.yaml`` works in it at once, with no server.

Templates live in ``dativo_ingest/init/template/`` (package data, read with ``importlib.resources``): a folder
named ``__tenant__`` becomes the tenant, a file named ``gitignore`` becomes ``.gitignore`` (a dot-file would be
left out of the wheel), and ``{{tenant}}`` / ``{{tenant_ident}}`` in a file become the tenant id / the tenant
id as a Dagster name. The registry is the one the package falls back to (``config/default_registry.yaml``).
Everything is written into a staging folder first, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from dativo_ingest.config.export_schemas import SCHEMA_FILES, render
from dativo_ingest.config.secrets import validate_tenant_id
from dativo_ingest.errors import ConfigError, DativoError

DEFAULT_TENANT = "acme"
DEMO_JOB = "csv_employee_to_iceberg.yaml"
TENANT_DIR = "__tenant__"
#: entries of DIR that do not make it "not empty"
IGNORED_ENTRIES = frozenset({".git"})
_RENAMES = {"gitignore": ".gitignore"}
_TEXT_SUFFIXES = (".yaml", ".yml", ".md", ".csv", "")


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` wrote and the command that runs the demo job there."""

    root: Path
    written: list[PurePosixPath]
    overwritten: list[PurePosixPath]
    next_command: str

    def summary(self) -> str:
        """``wrote a dativo-ingest project into DIR (29 files; overwrote a, b)``."""
        replaced = f"; overwrote {_listed([str(p) for p in self.overwritten])}" if self.overwritten else ""
        return f"wrote a dativo-ingest project into {self.root} ({len(self.written)} files{replaced})"


def _walk(node: Traversable, rel: PurePosixPath) -> list[tuple[PurePosixPath, Traversable]]:
    out: list[tuple[PurePosixPath, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            out += _walk(child, rel / child.name)
        else:
            out.append((rel / child.name, child))
    return out


def render_template(text: str, tenant: str) -> str:
    """``{{tenant}}`` → the tenant id; ``{{tenant_ident}}`` → the same with ``-`` as ``_`` (a Dagster name)."""
    return text.replace("{{tenant_ident}}", tenant.replace("-", "_")).replace("{{tenant}}", tenant)


def template_files() -> list[tuple[PurePosixPath, Traversable]]:
    """``(template path, resource)`` of every shipped template file (``__tenant__`` and ``gitignore`` unrendered)."""
    return _walk(files(__name__).joinpath("template"), PurePosixPath())


def project_files(tenant: str) -> dict[PurePosixPath, bytes]:
    """Path in the project → content, for every file ``init`` writes for ``tenant``."""
    out: dict[PurePosixPath, bytes] = {}
    for rel, resource in template_files():
        parts = [tenant if p == TENANT_DIR else _RENAMES.get(p, p) for p in rel.parts]
        data = resource.read_bytes()
        if rel.suffix in _TEXT_SUFFIXES:
            data = render_template(data.decode("utf-8"), tenant).encode("utf-8")
        out[PurePosixPath(*parts)] = data
    registry = files("dativo_ingest.config").joinpath("default_registry.yaml").read_bytes()
    out[PurePosixPath("registry/connectors.yaml")] = registry
    for kind, schema in SCHEMA_FILES.items():
        out[PurePosixPath(schema)] = render(kind).encode("utf-8")
    return dict(sorted(out.items()))


def _existing_entries(root: Path) -> list[str]:
    if not root.exists():
        return []
    if not root.is_dir():
        raise ConfigError(root, "is a file, not a folder", fix="pass a new or empty folder to dativo_ingest init")
    return sorted(p.name for p in root.iterdir() if p.name not in IGNORED_ENTRIES)


def _listed(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def next_command(root: Path, tenant: str) -> str:
    """The command that runs the demo job: ``cd DIR && dativo_ingest run --config jobs/<tenant>/…``."""
    run = f"dativo_ingest run --config jobs/{tenant}/{DEMO_JOB}"
    here = Path.cwd().resolve()
    if root.resolve() == here:
        return run
    try:
        where = str(root.resolve().relative_to(here))
    except ValueError:
        where = str(root.resolve())
    return f"cd {shlex.quote(where)} && {run}"


def init_project(root: Path, *, tenant: str = DEFAULT_TENANT, force: bool = False) -> InitResult:
    """Write a working project into ``root`` (new or empty; with ``force``, over what is there)."""
    root = Path(root)
    tenant = validate_tenant_id(tenant, path="--tenant")
    content = project_files(tenant)
    present = _existing_entries(root)
    overwritten = [rel for rel in content if (root / rel).exists()]
    if present and not force:
        would = (f"would overwrite {_listed([str(p) for p in overwritten])}" if overwritten
                 else f"holds {_listed(present)}, none of which it would overwrite")
        raise ConfigError(root, f"is not empty: init {would}",
                          fix="pass --force to write the project into it anyway, or choose a new folder")
    for rel in content:  # a file where a folder must go (or the reverse) cannot be forced
        folders = [root.joinpath(*rel.parts[:i]) for i in range(1, len(rel.parts))]
        blocked = [p for p in folders if p.exists() and not p.is_dir()] + [p for p in [root / rel] if p.is_dir()]
        if blocked:
            raise ConfigError(blocked[0], "is in the way of the project's files",
                              fix="move it away and run dativo_ingest init again")
    _write(root, content)
    return InitResult(root=root, written=list(content), overwritten=overwritten,
                      next_command=next_command(root, tenant))


def _write(root: Path, content: dict[PurePosixPath, bytes]) -> None:
    """Stage every file beside ``root``, then move them in (the whole folder when ``root`` is new)."""
    parent = root.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=parent))
    except OSError as exc:
        raise DativoError(f"{root}: cannot create the project ({exc.strerror or exc})") from None
    try:
        for rel, data in content.items():
            path = stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if not root.exists():
            os.replace(stage, root)
            return
        for rel in content:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, root / rel)
    except OSError as exc:
        raise DativoError(f"{root}: cannot write the project ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


__all__ = ["DEFAULT_TENANT", "InitResult", "init_project", "next_command", "project_files", "render_template",
           "template_files"]
