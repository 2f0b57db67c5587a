"""The config layer: YAML files -> validated, merged, expanded ``JobPlan``."""

from dativo_ingest.config.expand import expand_vars, make_lookup, variables_in
from dativo_ingest.config.loader import (
    discover_job_files,
    find_project_root,
    load_asset,
    load_job_plan,
    load_recipe,
    load_registry,
    parse_model,
    read_yaml,
)
from dativo_ingest.config.merge import deep_merge
from dativo_ingest.config.models import (
    AssetDefinition,
    AssetTarget,
    ConnectorRecipe,
    JobConfig,
    Registry,
    RegistryConnector,
    SchemaField,
)
from dativo_ingest.config.plan import JobPlan
from dativo_ingest.config.secrets import Secrets, is_secret_name, load_secrets, validate_tenant_id

__all__ = [
    "AssetDefinition",
    "AssetTarget",
    "ConnectorRecipe",
    "JobConfig",
    "JobPlan",
    "Registry",
    "RegistryConnector",
    "SchemaField",
    "Secrets",
    "deep_merge",
    "discover_job_files",
    "expand_vars",
    "find_project_root",
    "is_secret_name",
    "load_asset",
    "load_job_plan",
    "load_recipe",
    "load_registry",
    "load_secrets",
    "make_lookup",
    "parse_model",
    "read_yaml",
    "validate_tenant_id",
    "variables_in",
]
