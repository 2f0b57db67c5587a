"""Read and reset the state committed with a job's data, for every target kind, through the job's sink: an
Iceberg table's snapshot summary, or a plain-file dataset's run manifest (the truth; the mirror only follows)."""

from __future__ import annotations

from typing import Any

import orjson

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.quality import QUALITY_PROPERTY
from dativo_ingest.sinks.factory import open_sink
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.state.mirror import mirror_path, remove_mirror

#: the run id recorded with a reset (in the envelope, and in a run manifest's name)
RESET_RUN_ID = "state-reset"


def read_committed_state(plan: JobPlan) -> dict[str, Any]:
    """The envelope committed with the job's current data, with where it came from.

    ``snapshot_id`` is the Iceberg snapshot id, or the run manifest's sequence for plain files."""
    with open_sink(plan) as sink:
        envelope = sink.current_state()
        info: dict[str, Any] = {
            "table": sink.identifier,
            "snapshot_id": sink.base_version,
            "mirror": str(mirror_path(plan.tenant_id, plan.job_name)),
            "state": envelope.to_dict() if envelope is not None else None,
        }
        quality = next((props[QUALITY_PROPERTY] for props in sink.recent_properties(1) if QUALITY_PROPERTY in props),
                       None) if sink.base_version is not None else None
    if quality:  # the asset's quality rules as measured on the last commit
        info["quality"] = orjson.loads(quality)
    return info


def reset_committed_state(plan: JobPlan) -> dict[str, Any]:
    """Commit an empty envelope (no data change) so the next run starts from the beginning.

    Plain files get a new run manifest listing the same files, with the empty state."""
    empty = StateEnvelope(engine=plan.engine).advanced(run_id=RESET_RUN_ID, streams={}, engine=plan.engine,
                                                       dialect=plan.engine)
    with open_sink(plan, run_id=RESET_RUN_ID) as sink:
        remove_mirror(plan.tenant_id, plan.job_name)
        commit = sink.reset_state(empty)
    if commit is None:
        return {"table": sink.identifier, "reset": False, "reason": "no committed state"}
    return {"table": sink.identifier, "reset": True, "snapshot_id": commit.snapshot_id}


__all__ = ["read_committed_state", "reset_committed_state"]
