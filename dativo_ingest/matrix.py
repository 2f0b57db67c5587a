"""What runs: which engine reads which connector, and which connectors can be written — decided by the code and
the engine manifests, not by the registry. ``load_registry`` refuses a registry that claims more (a role or an
engine that is not implemented), so the capability matrix cannot promise what ``run`` then fails at.

- **native** reads ``BUILT_IN_SOURCES`` and every REST API whose recipe has an ``api:`` section (the project's
  ``connectors/sources/<name>.yaml``, else the recipe ``dativo_ingest init`` writes);
- **airbyte** reads the connectors of ``engines/airbyte.yaml`` (shipped, or the project's own);
- **singer** (``meltano``) reads the connectors of ``engines/singer.yaml``, and ``singer_tap`` (any tap the job's
  ``extractor:`` block names);
- **spark** reads PostgreSQL, MySQL/MariaDB (JDBC) and local CSV/Parquet/JSON-lines files (``engines/spark``);
- a target is written by the package itself (``sinks.factory.TARGETS``), whatever the engine.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dativo_ingest.config import loader
from dativo_ingest.config.engine_names import available_engines, canonical_engine, is_engine
from dativo_ingest.config.models import ConnectorRecipe, Registry
from dativo_ingest.engines.airbyte.manifest import load_manifest as airbyte_manifest
from dativo_ingest.engines.native.sources import BUILT_IN_SOURCES, has_api
from dativo_ingest.engines.singer.plugins import GENERIC_TAP, load_plugins
from dativo_ingest.engines.spark.options import FILE_SOURCES as SPARK_FILES
from dativo_ingest.engines.spark.options import JDBC_SOURCES as SPARK_DATABASES
from dativo_ingest.errors import ConfigError
from dativo_ingest.sinks.factory import TARGETS

#: what the spark engine reads: databases over JDBC, local files
SPARK_SOURCES = frozenset({*SPARK_DATABASES, *SPARK_FILES})


def _recipe(project_root: Path, name: str) -> ConnectorRecipe | None:
    """The project's source recipe of ``name``, else the one ``dativo_ingest init`` writes (None: neither)."""
    candidates = [project_root / "connectors" / "sources" / f"{name}.yaml",
                  project_root / "connectors" / f"{name}.yaml"]
    # ``dativo_ingest`` (imported already), not ``dativo_ingest.init``: importing that package costs ~0.07 s
    template = resources.files("dativo_ingest").joinpath("init", "template", "connectors", "sources", f"{name}.yaml")
    for path in [*candidates, Path(str(template))]:
        if path.is_file():
            try:
                return loader.load_recipe(path)
            except ConfigError:
                return None  # a broken recipe is reported by the job that uses it
    return None


class Capabilities:
    """What the code of this package (and the project's engine manifests) can read and write."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = Path(project_root)
        self.airbyte = set(airbyte_manifest(self.project_root).entries)
        self.singer = set(load_plugins(self.project_root).entries) | {GENERIC_TAP}

    def reads(self, engine: str, connector: str) -> bool:
        """Whether ``engine`` reads ``connector`` as a source."""
        engine = canonical_engine(engine)
        if engine == "native":
            if connector in BUILT_IN_SOURCES:
                return True
            recipe = _recipe(self.project_root, connector)
            return recipe is not None and has_api(recipe)
        if engine == "airbyte":
            return connector in self.airbyte
        if engine == "singer":
            return connector in self.singer
        if engine == "spark":
            return connector in SPARK_SOURCES
        return False

    @staticmethod
    def writes(connector: str) -> bool:
        """Whether ``connector`` can be a target."""
        return connector in TARGETS


def _no_reader(engine: str, connector: str) -> str:
    engine = canonical_engine(engine)
    if engine == "native":
        return (f"the native engine reads {', '.join(sorted(BUILT_IN_SOURCES))} and REST APIs whose recipe has an "
                f"api: section, and connectors/sources/{connector}.yaml has none")
    if engine == "spark":
        return f"the spark engine reads {', '.join(sorted(SPARK_SOURCES))}"
    return f"engines/{engine}.yaml has no entry '{connector}'"


def registry_problems(registry: Registry, project_root: Path) -> list[tuple[str, str, str]]:
    """``(field, problem, fix)`` for every claim of the registry the code does not keep."""
    can = Capabilities(project_root)
    out: list[tuple[str, str, str]] = []
    for name, entry in registry.connectors.items():
        where = f"connectors.{name}"
        readers = [e for e in entry.engines_supported if is_engine(e) and can.reads(e, name)]
        if "source" in entry.roles and not readers:
            out.append((f"{where}.roles", f"'{name}' cannot be read as a source by any engine yet",
                        "remove 'source' from its roles"))
        for engine in entry.engines_supported:
            if not is_engine(engine):
                out.append((f"{where}.engines_supported", f"engine '{engine}' is not implemented "
                            f"(engines: {available_engines()})", f"remove '{engine}'"))
            elif "source" not in entry.roles or not readers:
                if canonical_engine(engine) != "native":
                    out.append((f"{where}.engines_supported", f"'{name}' is only a target, and targets are "
                                "written by the native engine", "use engines_supported: [native]"))
            elif engine not in readers:
                out.append((f"{where}.engines_supported", f"engine '{engine}' cannot read '{name}' "
                            f"({_no_reader(engine, name)})", f"remove '{engine}'"))
        if "target" in entry.roles and not can.writes(name):
            out.append((f"{where}.roles", f"'{name}' cannot be written (targets: {', '.join(TARGETS)})",
                        "remove 'target' from its roles"))
    return out


def load_registry(project_root: Path) -> Registry:
    """``registry/connectors.yaml`` (or the packaged one), refused with one line naming the file, the field and
    the fix when it claims a role or an engine the code does not implement."""
    registry = loader.load_registry(project_root)
    problems = registry_problems(registry, project_root)
    if problems:
        path = Path(project_root) / loader.REGISTRY_FILE
        field, problem, fix = problems[0]
        error = ConfigError(path if path.is_file() else loader.DEFAULT_REGISTRY, problem, field=field, fix=fix)
        error.problems = [str(ConfigError(error.path, p, field=f, fix=x)) for f, p, x in problems]  # type: ignore
        raise error
    return registry


__all__ = ["Capabilities", "load_registry", "registry_problems"]
