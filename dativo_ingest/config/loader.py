"""Load one job into a validated ``JobPlan``: job + recipes + registry + asset + secrets, merged and expanded.

Every failure is a one-line ``ConfigError``: ``<file>: <field>: <problem> (<fix>)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dativo_ingest.config.engine_names import available_engines, canonical_engine, is_engine
from dativo_ingest.config.expand import Lookup, expand_vars, variables_in
from dativo_ingest.config.local_files import LocalFileAccess
from dativo_ingest.config.merge import deep_merge, without_overridden
from dativo_ingest.config.models import (
    AssetDefinition,
    ClosedModel,
    ConnectorRecipe,
    JobConfig,
    JobSource,
    JobTarget,
    Registry,
    RegistryConnector,
    check_partitioning,
    is_canonical,
    validation_problems,
)
from dativo_ingest.config.plan import JobPlan
from dativo_ingest.config.policy import POLICY_FILE, PolicyConfig
from dativo_ingest.config.read_policy import build_read_policy
from dativo_ingest.config.secrets import Secrets, is_secret_name, load_secrets, validate_tenant_id
from dativo_ingest.errors import ConfigError
from dativo_ingest.storage.stores import STORAGE_BLOCKS

M = TypeVar("M", bound=BaseModel)

REGISTRY_FILE = Path("registry") / "connectors.yaml"
DEFAULT_REGISTRY = Path(__file__).with_name("default_registry.yaml")
MODES = ("self_hosted", "cloud")
#: csv reader options the loader folds to the top level of ``plan.source`` (effective values)
CSV_OPTION_KEYS = ("delimiter", "quote_char", "encoding", "header", "null_values", "skip_rows")


# -- YAML and models ---------------------------------------------------------------------------------------


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when installed: 5-10x faster) refusing a key written twice in one mapping (the
    second silently won before)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

#: how many nodes a YAML file may expand to once its aliases are followed (a config file has a few thousand)
MAX_EXPANDED_NODES = 100_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under ``node`` counting each alias as a full copy (memoised by node: linear in the file's size)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once (and pyyaml refuses to construct it anyway)
    total = 1
    if isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(v, sizes) for v in node.value)
    sizes[id(node)] = total
    if total > MAX_EXPANDED_NODES:
        raise _TooLarge
    return total


class _TooLarge(Exception):
    """The document expands beyond ``MAX_EXPANDED_NODES`` (an alias bomb)."""


def _load_bounded(text: str) -> Any:
    """``yaml.load`` with the unique-key loader, refusing a document whose aliases expand it beyond the bound."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {})
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping; syntax errors name the line."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, "file not found", fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot be read ({exc.__class__.__name__})", fix="check the file") from None
    try:
        data = _load_bounded(text)
    except _TooLarge:
        raise ConfigError(path, f"its aliases (*name) expand it beyond {MAX_EXPANDED_NODES:,} values",
                          fix="write the values out, or use fewer nested aliases") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(path, f"{where}invalid YAML ({problem})",
                          fix="check indentation and quoting near that line") from None
    if data is None:
        raise ConfigError(path, "file is empty", fix="write the configuration as key: value lines")
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping of key: value at the top level",
                          fix="write the configuration as key: value lines")
    return data


def parse_model(model: type[M], data: Any, path: str | Path | None, *, show_values: bool = True,
                secrets: Secrets | None = None) -> M:
    """``model.model_validate(data)``; a ``ValidationError`` becomes one one-line ``ConfigError``.

    The error's ``problems`` attribute lists every problem found, one line each.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for field, message, fix in validation_problems(exc, data, model, show_values=show_values):
            if secrets is not None:
                message = secrets.redact(message)
            lines.append(ConfigError(path, message, field=field, fix=fix))
        first = lines[0]
        first.problems = [str(e) for e in lines]  # type: ignore[attr-defined]
        raise first from None


def load_asset(path: Path, lookup: Lookup | None = None, *, tenant_id: str | None = None,
               secrets: Secrets | None = None, objects: Sequence[str] = (), asset: str | None = None
               ) -> AssetDefinition:
    """An asset file, with its ``${VAR}``s expanded (from ``lookup``: the tenant's secrets, then the environment):
    the flat dativo dialect, or one schema object of a canonical ODCS v3 contract (picked by ``objects``/``asset``).

    A name that becomes part of a table identifier or a path (the asset's name, domain, dataProduct, object,
    a field name) may not be built from a secret: identifiers are shown everywhere."""
    data = read_yaml(path)
    canonical = is_canonical(data)
    if canonical:  # the canonical form's reader: imported for such a contract only (the flat form needs none)
        from dativo_ingest.config.odcs import asset_from_canonical, canonical_names
    if lookup is not None:
        _refuse_secret_names(canonical_names(data) if canonical else _flat_names(data), secrets, path)
        data, _ = expand_vars(data, lookup, path=path, tenant_id=tenant_id)
    if canonical:
        return asset_from_canonical(data, path, objects=objects, asset=asset)
    return parse_model(AssetDefinition, data, path, secrets=secrets)


def _flat_names(data: dict[str, Any]) -> dict[str, Any]:
    names = {key: data.get(key) for key in ("name", "domain", "dataProduct", "object")}
    fields = data.get("schema") if isinstance(data.get("schema"), list) else []
    names.update({f"schema[{i}].name": f.get("name") for i, f in enumerate(fields) if isinstance(f, dict)})
    return names


def _refuse_secret_names(names: dict[str, Any], secrets: Secrets | None, path: Path) -> None:
    secret_values = set(secrets.values()) if secrets is not None else set()
    for field, value in names.items():
        for var in variables_in(value) if isinstance(value, str) else ():
            if is_secret_name(var) or (secrets is not None and secrets.get(var) in secret_values):
                raise ConfigError(path, f"is built from ${{{var}}}, a secret, and names are shown in table "
                                  "identifiers, paths and logs", field=field,
                                  fix="use a variable that is not a secret there")


def load_recipe(path: Path) -> ConnectorRecipe:
    return parse_model(ConnectorRecipe, read_yaml(path), path)


# -- project layout ----------------------------------------------------------------------------------------


def find_project_root(job_path: Path) -> Path:
    """``$DATIVO_PROJECT_DIR``; else the nearest ancestor of the job holding ``registry/connectors.yaml``;
    else the current directory."""
    env = os.environ.get("DATIVO_PROJECT_DIR")
    if env:
        return Path(env).expanduser().resolve()
    for parent in Path(job_path).resolve().parents:
        if (parent / REGISTRY_FILE).is_file():
            return parent
    return Path.cwd().resolve()


def load_registry(project_root: Path) -> Registry:
    """``<project_root>/registry/connectors.yaml``, or the registry shipped with the package."""
    path = Path(project_root) / REGISTRY_FILE
    if not path.is_file():
        path = DEFAULT_REGISTRY
    return parse_model(Registry, read_yaml(path), path)


def discover_job_files(job_dir: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files directly in ``job_dir``, sorted by name."""
    job_dir = Path(job_dir)
    if not job_dir.is_dir():
        raise ConfigError(job_dir, "is not a directory", field="--job-dir", fix="pass a folder of job files")
    return sorted(p for p in job_dir.iterdir()
                  if p.is_file() and p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def _resolve(root: Path, rel: str) -> Path:
    p = Path(os.path.expanduser(rel))
    return p if p.is_absolute() else root / p


# -- steps of load_job_plan --------------------------------------------------------------------------------


def _tenant(job_tenant: Any, arg_tenant: str | None, job_path: Path) -> str:
    if arg_tenant is not None:
        validate_tenant_id(arg_tenant, path="--tenant")
        if job_tenant is not None and job_tenant != arg_tenant:
            raise ConfigError(job_path, f"tenant_id '{job_tenant}' does not match --tenant '{arg_tenant}'",
                              field="tenant_id", fix="run the job for its own tenant or fix tenant_id")
        return arg_tenant
    folder = _tenant_folder(job_path)
    if job_tenant is None and folder is not None:
        return validate_tenant_id(folder, path=job_path)
    if job_tenant is None:
        raise ConfigError(job_path, "is not set", field="tenant_id",
                          fix="add 'tenant_id: <tenant>' to the job, put it under jobs/<tenant>/, or pass --tenant-id")
    return validate_tenant_id(job_tenant, path=job_path)


def _tenant_folder(job_path: Path) -> str | None:
    """``<tenant>`` when the job is ``…/jobs/<tenant>/<name>.yaml`` (the seed's layout), else None."""
    parent = Path(job_path).resolve().parent
    return parent.name if parent.parent.name == "jobs" else None


def _registry_entry(registry: Registry, name: str, role: str, job_path: Path) -> RegistryConnector:
    entry = registry.connectors.get(name)
    if entry is None:
        raise ConfigError(job_path, f"Job validation failed: Connector '{name}' not found in registry — "
                          f"registry/connectors.yaml knows: {registry.known()}", field=f"{role}_connector",
                          fix="register it there or correct the name")
    if role not in entry.roles:
        raise ConfigError(job_path, f"connector '{name}' cannot be a {role} "
                          f"(registry roles: {', '.join(entry.roles)})", field=f"{role}_connector",
                          fix=f"choose a connector with role {role}")
    return entry


def recipe_path(root: Path, given: str | None, name: str, role: str, job_path: Path) -> Path | None:
    """The recipe file of connector ``name`` in ``role``: the job's ``*_connector_path``, else
    ``connectors/<role>s/<name>.yaml`` (or the flat ``connectors/<name>.yaml``); None when there is none."""
    folder = Path("connectors") / f"{role}s"
    if given:
        stem = Path(given).stem
        candidates = [_resolve(root, given), root / folder / f"{stem}.yaml", root / "connectors" / f"{stem}.yaml"]
    else:
        candidates = [root / folder / f"{name}.yaml", root / "connectors" / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if not given:
        return None  # no recipe: the registry entry alone describes the connector
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ConfigError(job_path, f"connector recipe not found (tried: {tried})", field=f"{role}_connector_path",
                      fix=f"create {folder / (name + '.yaml')} or correct the path")


def _recipe(root: Path, given: str | None, name: str, role: str,
            job_path: Path) -> tuple[ConnectorRecipe | None, Path | None]:
    path = recipe_path(root, given, name, role, job_path)
    if path is None:
        return None, None
    recipe = load_recipe(path)
    if recipe.type != role:
        raise ConfigError(path, f"is a {recipe.type} recipe but the job uses it as {role}_connector",
                          field="type", fix=f"point {role}_connector_path at a {role} recipe")
    if recipe.name != name:
        raise ConfigError(path, f"is the recipe of '{recipe.name}' but the job's {role}_connector is '{name}'",
                          field="name", fix=f"point {role}_connector_path at the recipe of '{name}'")
    return recipe, path


def _engine(job: JobConfig, recipe: ConnectorRecipe | None, recipe_path: Path | None,
            entry: RegistryConnector, connector: str, job_path: Path) -> str:
    choices: list[tuple[str | None, Path, str]] = []
    if isinstance(job.engine, str):
        choices.append((job.engine, job_path, "engine"))
    elif job.engine is not None:
        choices.append((job.engine.name, job_path, "engine.name"))
    if job.source is not None and job.source.engine is not None:
        choices.append((job.source.engine.name, job_path, "source.engine.name"))
    if recipe is not None and recipe_path is not None:
        choices.append((recipe.engine_name, recipe_path, "engine"))
    name, path, field = next(((n, p, f) for n, p, f in choices if n), (entry.default_engine, None, None))
    if not is_engine(name):
        raise ConfigError(path or REGISTRY_FILE, f"engine '{name}' is not available (engines: {available_engines()})",
                          field=field or "default_engine", fix=f"use one of them; '{connector}' supports "
                          f"{', '.join(entry.engines_supported)}")
    supported = {canonical_engine(e) for e in entry.engines_supported}
    if canonical_engine(name) not in supported:
        raise ConfigError(path or REGISTRY_FILE, f"engine '{name}' is not supported by '{connector}' "
                          f"(supported: {', '.join(entry.engines_supported)})", field=field or "default_engine",
                          fix="use one of them (the registry lists every engine that reads it)")
    return canonical_engine(name)


def _engine_options(job: JobConfig, recipe: ConnectorRecipe | None) -> dict[str, Any]:
    options = recipe.engine_options if recipe is not None else {}
    if job.source is not None and job.source.engine is not None:
        options = deep_merge(options, job.source.engine.options)
    if job.engine is not None and not isinstance(job.engine, str):
        options = deep_merge(options, job.engine.options)
    return options


def _check_cloud(mode: str, name: str, entry: RegistryConnector, role: str, job_path: Path) -> None:
    if mode == "cloud" and not entry.allowed_in_cloud:
        raise ConfigError(job_path, f"connector '{name}' is not allowed in cloud mode "
                          "(registry/connectors.yaml: allowed_in_cloud: false)", field=f"{role}_connector",
                          fix="run with --mode self_hosted or choose another connector")


def _choose_storage(target: dict[str, Any], job_target: dict[str, Any], job_path: Path) -> None:
    """``target.storage``: the job's or the recipe's, else the one store block the job itself writes under
    ``target.connection`` (the guide's ``s3: {bucket: …}``) — never a block filled only by variables."""
    if target.get("storage") is not None:
        return
    connection = job_target.get("connection") if isinstance(job_target.get("connection"), dict) else {}
    named = list(dict.fromkeys(kind for kind, blocks in STORAGE_BLOCKS.items()
                               for block in blocks if isinstance(connection.get(block), dict)))
    if len(named) > 1:
        raise ConfigError(job_path, f"target.connection names {' and '.join(named)} stores", field="target.storage",
                          fix=f"say which one: storage: {' or '.join(named)}")
    if named:
        target["storage"] = named[0]


def _check_objects(objects: Any, entry: RegistryConnector, name: str, job_path: Path) -> None:
    """Every ``source.objects`` entry is one the registry's ``objects_supported`` lists (when it lists any; a file
    connector's objects are the streams its files land in, and ``objects_supported`` names their kind)."""
    if not entry.objects_supported or not isinstance(objects, list) or entry.category == "files":
        return
    for i, obj in enumerate(objects):
        if obj not in entry.objects_supported:
            raise ConfigError(job_path, f"'{name}' has no object '{obj}' (objects_supported: "
                              f"{', '.join(entry.objects_supported)})", field=f"source.objects[{i}]",
                              fix="use one of them")


def _section(role: str, raw: Any, recipe: ConnectorRecipe | None, recipe_path: Path | None, job_path: Path,
             lookup: Lookup, tenant: str) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """(merged section for the plan, the job's own section expanded, variables used).

    The recipe's template is pruned of what the job overrides *before* expansion, so a ``${VAR}`` the job
    replaces is never required, and an unset one is reported against the file that holds it.
    """
    job_part = {k: v for k, v in (raw or {}).items() if v is not None}
    job_exp, used = expand_vars(job_part, lookup, path=job_path, field=role, tenant_id=tenant)
    base: dict[str, Any] = {}
    if recipe is not None:
        job_conn = job_part.get("connection") if isinstance(job_part.get("connection"), dict) else {}
        conn, u1 = expand_vars(without_overridden(recipe.connection_template, job_conn), lookup,
                               path=recipe_path, field="connection_template", tenant_id=tenant)
        opts, u2 = expand_vars(without_overridden(recipe.options, job_part), lookup,
                               path=recipe_path, field="options", tenant_id=tenant)
        used |= u1 | u2
        base = dict(opts)
        if recipe.connection_template:
            base["connection"] = conn
    return deep_merge(base, job_exp), job_exp, used


def _fold_csv_options(merged: dict[str, Any], job_source: dict[str, Any]) -> None:
    """Effective csv options at the top level: job top-level > source.engine.options > source.options > recipe."""
    engine = job_source.get("engine")
    layers = [engine.get("options") if isinstance(engine, dict) else None, job_source.get("options")]
    for key in CSV_OPTION_KEYS:
        if key in job_source:
            continue
        for layer in layers:
            if isinstance(layer, dict) and key in layer:
                merged[key] = layer[key]
                break


def _asset(root: Path, job: JobConfig, job_path: Path, lookup: Lookup, tenant: str,
           secrets: Secrets) -> tuple[AssetDefinition, Path]:
    path = _resolve(root, job.asset_path)
    if not path.is_file():
        raise ConfigError(job_path, f"asset file not found: {path}", field="asset_path",
                          fix=f"paths are relative to the project root {root}")
    asset = load_asset(path, lookup, tenant_id=tenant, secrets=secrets, objects=job_objects(job), asset=job.asset)
    if job.asset and job.asset != asset.name:
        raise ConfigError(job_path, f"asset '{job.asset}' does not match the name '{asset.name}' in {path}",
                          field="asset", fix="make the job's asset equal the asset definition's name")
    return asset, path


def job_objects(job: JobConfig) -> list[str]:
    """The objects a job names: ``source.objects``, else its tables' or files' ``object`` (tables: or name)."""
    src = job.source
    if src is None:
        return []
    names = list(src.objects or []) or [t.object or t.name for t in src.tables or []] or \
        [f.object for f in src.files or [] if f.object]
    return list(dict.fromkeys(names))


def _modes(job: JobConfig, asset: AssetDefinition, asset_path: Path, job_path: Path) -> tuple[str, str]:
    validation = job.schema_validation_mode or (asset.target.mode if asset.target else None) or "strict"
    write, origin = (job.target.write_mode if job.target else None), job_path
    if write is None and asset.target is not None:
        write, origin = asset.target.write_mode, asset_path
    if write is None:
        write = "merge" if asset.primary_key else "append"
    elif write == "merge" and not asset.primary_key:
        raise ConfigError(origin, f"write_mode merge needs a primary key, and asset '{asset.name}' has none",
                          field="target.write_mode",
                          fix="mark key fields with 'primary_key: true' in the asset or use append/overwrite")
    return validation, write


# -- the entry point ---------------------------------------------------------------------------------------


def load_job_plan(job_path: Path, *, secrets_dir: Path | None, tenant_id: str | None = None,
                  mode: str = "self_hosted", registry: Registry | None = None) -> JobPlan:
    """Read, validate, merge and expand one job file into a ``JobPlan``."""
    job_path = Path(job_path)
    if mode not in MODES:
        raise ConfigError(None, f"unknown mode '{mode}'", field="--mode", fix="use self_hosted or cloud")
    raw = read_yaml(job_path)
    parse_model(JobConfig, raw, job_path)  # structure first: typos and types, before any variable is needed
    tenant = _tenant(raw.get("tenant_id"), tenant_id, job_path)
    secrets = load_secrets(secrets_dir, tenant, project_root=find_project_root(job_path))
    try:
        plan = _build_plan(job_path, raw, tenant, secrets, mode, registry)
        plan.mode = mode
        plan.local_files = LocalFileAccess.for_project(plan.project_root, mode, secrets_dir)
        _check_local_paths(plan)
        return plan
    except ConfigError as exc:  # a path or name built from a secret must not show it
        exc.message = secrets.redact(exc.message)
        exc.args = (exc.message,)
        raise


def _check_local_paths(plan: JobPlan) -> None:
    """Every literal local path of ``source.files`` / ``source.path`` (whatever the engine: a connector reads it
    too) must be readable by the job's rule; globs are checked file by file when the source expands them, and
    URLs (``scheme://``) are not local files."""
    if plan.source_registry.category == "storage":
        return  # an object store's keys, not local files
    for i, entry in enumerate(plan.source.file_entries()):
        raw = entry.path
        if not raw or "://" in raw or any(c in raw for c in "*?["):
            continue
        path = Path(os.path.expanduser(raw))
        plan.file_access.check(path if path.is_absolute() else plan.project_root / path, where=plan.job_path,
                               field=plan.source.file_field(i))


class _Sections(ClosedModel):
    """The merged ``source`` and ``target`` of a plan, validated together so errors name ``source.…``."""

    source: JobSource
    target: JobTarget


def _build_plan(job_path: Path, raw: dict[str, Any], tenant: str, secrets: Secrets, mode: str,
                registry: Registry | None) -> JobPlan:
    lookup = secrets.lookup()
    root = find_project_root(job_path)
    registry = registry if registry is not None else load_registry(root)

    top = {k: v for k, v in raw.items() if k not in ("source", "target")}
    top_exp, used = expand_vars(top, lookup, path=job_path, tenant_id=tenant)
    pre = parse_model(JobConfig, {**raw, **top_exp}, job_path, show_values=False, secrets=secrets)

    src_name, tgt_name = pre.source_connector, pre.target_connector
    src_entry = _registry_entry(registry, src_name, "source", job_path)
    tgt_entry = _registry_entry(registry, tgt_name, "target", job_path)
    src_recipe, src_recipe_path = _recipe(root, pre.source_connector_path, src_name, "source", job_path)
    tgt_recipe, tgt_recipe_path = _recipe(root, pre.target_connector_path, tgt_name, "target", job_path)
    engine = _engine(pre, src_recipe, src_recipe_path, src_entry, src_name, job_path)
    _check_cloud(mode, src_name, src_entry, "source", job_path)
    _check_cloud(mode, tgt_name, tgt_entry, "target", job_path)
    asset, asset_path = _asset(root, pre, job_path, lookup, tenant, secrets)

    source, job_source, u_src = _section("source", raw.get("source"), src_recipe, src_recipe_path, job_path,
                                         secrets.lookup(src_name), tenant)
    target, job_target, u_tgt = _section("target", raw.get("target"), tgt_recipe, tgt_recipe_path, job_path,
                                         secrets.lookup(tgt_name), tenant)
    _fold_csv_options(source, job_source)
    _check_objects(source.get("objects"), src_entry, src_name, job_path)
    incremental = source.get("incremental")
    if isinstance(incremental, dict) and not incremental.get("strategy"):
        default = (src_recipe.incremental_strategy if src_recipe else None) or src_entry.incremental_strategy_default
        if default:
            incremental["strategy"] = default
    _choose_storage(target, job_target, job_path)
    if isinstance(target.get("catalog"), str):
        target["catalog"] = {"type": target["catalog"]}
    if isinstance(target.get("partitioning"), list):
        try:
            check_partitioning(target["partitioning"], set(asset.field_names), "target.partitioning")
        except ValueError as exc:
            raise ConfigError(job_path, str(exc)) from None

    expanded_job = {**top_exp}
    if "source" in raw:
        expanded_job["source"] = job_source
    if "target" in raw:
        expanded_job["target"] = job_target
    job = parse_model(JobConfig, expanded_job, job_path, show_values=False, secrets=secrets)
    sections = parse_model(_Sections, {"source": source, "target": target}, job_path, show_values=False,
                           secrets=secrets)
    validation_mode, write_mode = _modes(job, asset, asset_path, job_path)
    read = build_read_policy(sections.source, write_mode=write_mode, job_path=job_path)

    return JobPlan(
        job_path=job_path,
        job_name=job_path.stem,
        tenant_id=tenant,
        project_root=root,
        job=job,
        asset=asset,
        asset_path=asset_path,
        source_connector=src_name,
        target_connector=tgt_name,
        source_recipe=src_recipe,
        target_recipe=tgt_recipe,
        source_registry=src_entry,
        target_registry=tgt_entry,
        engine=engine,
        source=sections.source,
        target=sections.target,
        validation_mode=validation_mode,  # type: ignore[arg-type]
        write_mode=write_mode,  # type: ignore[arg-type]
        secrets=secrets,
        variables_used=sorted(used | u_src | u_tgt),
        engine_options=_engine_options(job, src_recipe),
        read=read,
    )


def load_policy(root: Path) -> PolicyConfig | None:
    """The project's governance policy, ``configs/policy.yaml`` (None: the project has none)."""
    path = root / POLICY_FILE
    if not path.is_file():
        return None
    return parse_model(PolicyConfig, read_yaml(path), path)
