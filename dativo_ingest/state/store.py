"""Read and reset the state committed in a job's Iceberg table (the truth; the mirror only follows)."""

from __future__ import annotations

from typing import Any

import orjson

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.sinks.iceberg.catalog import open_catalog
from dativo_ingest.sinks.iceberg.sink import STATE_PROPERTY
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.state.mirror import mirror_path, remove_mirror


def _table(plan: JobPlan) -> Any:
    from pyiceberg.exceptions import NoSuchTableError

    catalog = open_catalog(plan.target)
    try:
        return catalog.load_table(f"{plan.tenant_id}.{plan.asset.name}")
    except NoSuchTableError:
        return None


def read_committed_state(plan: JobPlan) -> dict[str, Any]:
    """The envelope in the current snapshot, with where it came from."""
    table = _table(plan)
    identifier = f"{plan.tenant_id}.{plan.asset.name}"
    snap = table.current_snapshot() if table is not None else None
    raw = snap.summary.additional_properties.get(STATE_PROPERTY) if snap is not None and snap.summary else None
    return {
        "table": identifier,
        "snapshot_id": snap.snapshot_id if snap is not None else None,
        "mirror": str(mirror_path(plan.tenant_id, plan.job_name)),
        "state": orjson.loads(raw) if raw else None,
    }


def reset_committed_state(plan: JobPlan) -> dict[str, Any]:
    """Commit an empty envelope (no data change) so the next run starts from the beginning."""
    table = _table(plan)
    identifier = f"{plan.tenant_id}.{plan.asset.name}"
    remove_mirror(plan.tenant_id, plan.job_name)
    if table is None or table.current_snapshot() is None:
        return {"table": identifier, "reset": False, "reason": "no committed state"}
    empty = StateEnvelope(engine=plan.engine).advanced(run_id="state-reset", streams={}, engine=plan.engine,
                                                       dialect=plan.engine)
    tx = table.transaction()
    with tx.update_snapshot(snapshot_properties={STATE_PROPERTY: empty.to_json()}).fast_append():
        pass
    table = tx.commit_transaction()
    return {"table": identifier, "reset": True, "snapshot_id": table.current_snapshot().snapshot_id}
