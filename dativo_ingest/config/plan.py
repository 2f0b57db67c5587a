"""The validated plan of one job: everything the runner needs, already merged and expanded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dativo_ingest.config.local_files import LocalFileAccess
from dativo_ingest.config.models import (
    AssetDefinition,
    ConnectorRecipe,
    JobConfig,
    JobSource,
    JobTarget,
    RegistryConnector,
)
from dativo_ingest.config.policy import FieldProtection
from dativo_ingest.config.read_policy import ReadPolicy
from dativo_ingest.config.secrets import Secrets

ValidationMode = Literal["strict", "warn"]
WriteMode = Literal["append", "overwrite", "merge"]


@dataclass
class JobPlan:
    """One job, validated, merged with its recipes and expanded: everything a run needs."""

    job_path: Path
    #: the job file's stem, e.g. ``csv_employee_to_iceberg``
    job_name: str
    tenant_id: str
    #: base for every relative path in the job (see ``find_project_root``)
    project_root: Path
    #: the job as written, after ``${VAR}`` expansion
    job: JobConfig
    asset: AssetDefinition
    asset_path: Path
    source_connector: str
    target_connector: str
    source_recipe: ConnectorRecipe | None
    target_recipe: ConnectorRecipe | None
    source_registry: RegistryConnector
    target_registry: RegistryConnector
    #: resolved engine: job ``engine`` > job ``source.engine.name`` > recipe ``engine`` > registry default
    engine: str
    #: recipe ``connection_template``/``options`` ⊕ job ``source`` (job wins, deep), expanded, validated
    source: JobSource
    #: recipe ``connection_template``/``options`` ⊕ job ``target`` (job wins, deep), expanded, validated
    target: JobTarget
    #: job ``schema_validation_mode`` > asset ``target.mode`` > "strict"
    validation_mode: ValidationMode
    #: job ``target.write_mode`` > asset ``target.write_mode`` > "merge" if the asset has a primary key else "append"
    write_mode: WriteMode
    secrets: Secrets
    #: names of the ${VAR}s the job used (for the "env vars" startup step)
    variables_used: list[str] = field(default_factory=list)
    #: engine options: recipe ``engine.options`` ⊕ job ``source.engine.options`` ⊕ job ``engine.options``
    engine_options: dict[str, Any] = field(default_factory=dict)
    #: how the source is read this run (full refresh, cursors, lookback, deletes), decided once
    read: ReadPolicy = field(default_factory=ReadPolicy)
    #: what the tenant's policy (``configs/policy.yaml``) does to classified fields: mask / hash (dropped fields
    #: are already gone from ``asset``), and the salt of hash
    protection: FieldProtection = field(default_factory=FieldProtection)
    #: ``self_hosted`` or ``cloud``
    mode: str = "self_hosted"
    #: which local files the job may read as data (never secrets; in cloud mode only the project's data/)
    local_files: LocalFileAccess | None = None
    #: what ``check`` tells the user besides "ok" (e.g. "installs <package> on first run"), set by preflights
    notes: list[str] = field(default_factory=list)

    @property
    def default_stream(self) -> str:
        """The stream of a job that names none: the asset's ``object`` (or name)."""
        return str(self.asset.object or self.asset.name)

    @property
    def file_access(self) -> LocalFileAccess:
        """``local_files``, or the self-hosted rule for the project when the plan was built without one."""
        return self.local_files or LocalFileAccess.for_project(self.project_root, self.mode, None)
