"""Per-tenant governance: ``configs/policy.yaml`` (JSON Schema: ``schemas/policy.schema.json``).

Which source and target connectors a tenant may use, and what happens at ingestion to fields the asset
classifies (``classification: PII``, ``SENSITIVE`` …): ``keep`` (default), ``mask`` (``***``), ``hash``
(``sha256(salt || value)`` as 64 hex characters, the salt a per-tenant secret) or ``drop`` (not stored). A
tenant's entry overrides ``defaults`` key by key (``classifications`` merge by class). Without the file nothing
is restricted. ``check`` and ``run`` refuse a job the policy forbids before anything runs; the table records
what was applied (``dativo.policy`` property: ``{"field": "hash", …}``).

mask and hash apply to string fields (a hashed number would not fit its type); a primary-key field may be hashed
(equal values stay equal) but not masked or dropped; a cursor field is kept as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import Field

from dativo_ingest.config.models import AssetDefinition, ClosedModel, NonEmptyStr, TenantId
from dativo_ingest.config.read_policy import ReadPolicy
from dativo_ingest.config.secrets import Secrets
from dativo_ingest.errors import ConfigError
from dativo_ingest.stage.types import parse_type

POLICY_FILE = "configs/policy.yaml"
DEFAULT_SALT_SECRET = "PII_HASH_SALT"
MIN_SALT_LENGTH = 16
FieldAction = Literal["keep", "mask", "hash", "drop"]
MASK_TEXT = "***"


class TenantPolicyConfig(ClosedModel):
    """What one tenant (or every tenant, under ``defaults``) may do."""

    #: source connectors the tenant may read from (absent: any)
    sources: list[NonEmptyStr] | None = None
    #: target connectors the tenant may write to (absent: any)
    targets: list[NonEmptyStr] | None = None
    #: classification (as the asset writes it, case ignored) -> what ingestion does to such fields
    classifications: dict[NonEmptyStr, FieldAction] | None = None
    #: the secret (tenant secrets, project .env or environment) holding the salt of ``hash``
    hash_salt_secret: NonEmptyStr | None = None


class PolicyConfig(ClosedModel):
    """``configs/policy.yaml``."""

    version: Literal[1] = 1
    defaults: TenantPolicyConfig | None = None
    tenants: dict[TenantId, TenantPolicyConfig] = Field(default_factory=dict)


@dataclass(frozen=True)
class FieldProtection:
    """What ingestion does to a job's classified fields (``mask`` / ``hash``; ``drop``ped ones are gone from the
    plan's asset) and the salt of ``hash``."""

    actions: dict[str, FieldAction] = field(default_factory=dict)
    salt: str | None = None

    def table_property(self) -> dict[str, str]:
        """``{"dativo.policy": json}`` naming each field's action (no salt), or nothing."""
        return {"dativo.policy": json.dumps(self.actions, sort_keys=True)} if self.actions else {}


def tenant_policy(policy: PolicyConfig, tenant: str) -> TenantPolicyConfig:
    """``defaults`` with the tenant's own entry laid over it."""
    base = policy.defaults or TenantPolicyConfig()
    own = policy.tenants.get(tenant)
    if own is None:
        return base
    classes = {**(base.classifications or {}), **(own.classifications or {})}
    return TenantPolicyConfig(
        sources=own.sources if own.sources is not None else base.sources,
        targets=own.targets if own.targets is not None else base.targets,
        classifications=classes or None,
        hash_salt_secret=own.hash_salt_secret or base.hash_salt_secret,
    )


def _where(policy: PolicyConfig, tenant: str, key: str) -> str:
    own = policy.tenants.get(tenant)
    return f"tenants.{tenant}.{key}" if own is not None and getattr(own, key) is not None else f"defaults.{key}"


def check_connectors(policy: PolicyConfig, tenant: str, *, source: str, target: str, root: Path,
                     job_path: Path) -> None:
    """Refuse a source or target connector the tenant may not use (one line naming the policy field)."""
    rules = tenant_policy(policy, tenant)
    for role, name, allowed in (("source", source, rules.sources), ("target", target, rules.targets)):
        if allowed is not None and name not in allowed:
            key = "sources" if role == "source" else "targets"
            raise ConfigError(job_path, f"tenant '{tenant}' may not use {role} connector '{name}' "
                              f"({root / POLICY_FILE}: {_where(policy, tenant, key)} allows "
                              f"{', '.join(allowed) or 'none'})", field=f"{role}_connector",
                              fix=f"use an allowed {role}, or add '{name}' to {key} in {POLICY_FILE}")


def protect_fields(policy: PolicyConfig, tenant: str, asset: AssetDefinition, *, read: ReadPolicy,
                   secrets: Secrets, root: Path, job_path: Path,
                   asset_path: Path) -> tuple[AssetDefinition, FieldProtection]:
    """The asset without its dropped fields, and the mask/hash actions on the rest (refusing what cannot be
    applied: mask/hash on a non-string field, mask/drop on a key, any change to a cursor field)."""
    rules = tenant_policy(policy, tenant)
    by_class = {k.upper(): v for k, v in (rules.classifications or {}).items()}
    actions: dict[str, FieldAction] = {}
    cursors = set(read.cursor_fields.values())
    keys = set(asset.primary_key)
    for f in asset.fields:
        action = by_class.get(str(f.classification or "").upper(), "keep")
        if action == "keep":
            continue
        where = f"{root / POLICY_FILE}: classifications.{f.classification} is {action}"
        if f.name in cursors:
            raise ConfigError(asset_path, f"field '{f.name}' is the job's cursor, which the policy would {action} "
                              f"({where})", field=f"schema.{f.name}.classification",
                              fix="keep cursor fields, or read with another cursor")
        if f.name in keys and action != "hash":
            raise ConfigError(asset_path, f"primary key field '{f.name}' cannot be {action}ed ({where})",
                              field=f"schema.{f.name}.classification", fix="hash or keep key fields")
        if action in ("mask", "hash") and not pa.types.is_string(parse_type(f.type).arrow):
            raise ConfigError(asset_path, f"field '{f.name}' is {f.type}; {action} applies to string fields "
                              f"({where})", field=f"schema.{f.name}.type",
                              fix=f"declare it as string, or set {f.classification}: drop/keep in {POLICY_FILE}")
        actions[f.name] = action
    salt = None
    if "hash" in actions.values():
        name = rules.hash_salt_secret or DEFAULT_SALT_SECRET
        salt = secrets.lookup()(name)
        if not salt:
            raise ConfigError(job_path, f"Missing required environment variable: {name} (the salt that "
                              f"{POLICY_FILE} hashes {', '.join(k for k, v in actions.items() if v == 'hash')} with)",
                              field="hash_salt_secret",
                              fix=f"put {name}=<{MIN_SALT_LENGTH}+ random characters> in secrets/{tenant}/")
        if len(salt) < MIN_SALT_LENGTH:
            raise ConfigError(job_path, f"the hash salt {name} is shorter than {MIN_SALT_LENGTH} characters: "
                              "hashed values could be guessed back", field="hash_salt_secret",
                              fix=f"use {MIN_SALT_LENGTH} or more random characters")
    dropped = [n for n, a in actions.items() if a == "drop"]
    if len(dropped) == len(asset.fields):
        raise ConfigError(asset_path, "the policy drops every field of the asset", field="schema",
                          fix=f"keep at least one field ({POLICY_FILE}: classifications)")
    if dropped:
        asset = asset.model_copy(update={"fields": [f for f in asset.fields if f.name not in dropped]})
    return asset, FieldProtection(actions=actions, salt=salt)


__all__ = ["DEFAULT_SALT_SECRET", "MASK_TEXT", "MIN_SALT_LENGTH", "POLICY_FILE", "FieldAction", "FieldProtection",
           "PolicyConfig", "TenantPolicyConfig", "check_connectors", "protect_fields",
           "tenant_policy"]
