"""A connector's connection without a job: its recipe's ``connection_template``, expanded with a tenant's secrets.

Used by commands that talk to a source before any job exists (``discover``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dativo_ingest.config.expand import expand_vars
from dativo_ingest.config.loader import load_recipe, load_registry, recipe_path
from dativo_ingest.config.secrets import load_secrets, validate_tenant_id
from dativo_ingest.errors import ConfigError
from dativo_ingest.logs import redact


def recipe_connection(connector: str, *, project_root: Path, secrets_dir: Path | None, tenant_id: str,
                      role: str = "source", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The expanded connection of ``connector`` for ``tenant_id``; ``overrides`` win over the template."""
    tenant = validate_tenant_id(tenant_id, path=None)
    registry = load_registry(project_root)
    entry = registry.connectors.get(connector)
    if entry is None or role not in entry.roles:
        known = sorted(name for name, e in registry.connectors.items() if role in e.roles)
        raise ConfigError(None, f"unknown {role} connector '{connector}'", field="--connector",
                          fix=f"use one of: {', '.join(known)}")
    where = project_root / "registry" / "connectors.yaml"
    path = recipe_path(project_root, None, connector, role, where)
    template = dict(load_recipe(path).connection_template) if path else {}
    for key in overrides or {}:
        template.pop(key, None)
    secrets = load_secrets(secrets_dir, tenant, project_root=project_root)
    redact.add(secrets.values())
    conn, _ = expand_vars(template, secrets.lookup(connector), path=path, field="connection_template", tenant_id=tenant)
    return {**conn, **(overrides or {})}
