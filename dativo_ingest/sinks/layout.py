"""What a job's target is called and how its rows are partitioned: the names every part of the product shows."""

from __future__ import annotations

from dativo_ingest.config.plan import JobPlan

#: the sibling table (or dataset) holding the rows that failed validation in warn mode
QUARANTINE_SUFFIX = "__quarantine"


def quarantine_name(name: str) -> str:
    """``orders`` → ``orders__quarantine``."""
    return f"{name}{QUARANTINE_SUFFIX}"


def table_identifier(plan: JobPlan, *, quarantine: bool = False) -> str:
    """The table a job writes, as users see it: ``<tenant_id>.<asset name>`` (``…__quarantine`` for its
    quarantine). Plain-file targets use the same name in summaries; their sinks name the dataset's URL."""
    identifier = f"{plan.tenant_id}.{plan.asset.name}"
    return quarantine_name(identifier) if quarantine else identifier


def target_partitioning(plan: JobPlan) -> list[str]:
    """The job's ``target.partitioning``, else the asset's (``ingest_date``, ``day(ts)``, ``bucket(16, id)`` …)."""
    asset_target = plan.asset.target
    return list(plan.target.partitioning or (asset_target.partitioning if asset_target else None) or [])


__all__ = ["QUARANTINE_SUFFIX", "quarantine_name", "table_identifier", "target_partitioning"]
