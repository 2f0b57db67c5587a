"""The native engine: our own extractors, Arrow all the way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dativo_ingest.sources.csv import read_csv, resolve_files
from dativo_ingest.stream import Message

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope

FULL_REFRESH_STRATEGIES = {"none", "full_refresh", "full"}


class NativeEngine:
    name = "native"

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        connector = plan.source_connector
        if connector == "csv":
            files = resolve_files(plan.source, project_root=plan.project_root, default_stream=default_stream(plan))
            strategy = str((plan.source.get("incremental") or {}).get("strategy") or "file_modified_time").lower()
            skip_unchanged = plan.write_mode != "overwrite" and strategy not in FULL_REFRESH_STRATEGIES
            return read_csv(
                files,
                column_names=[f.name for f in plan.asset.fields],
                state=state.streams,
                skip_unchanged=skip_unchanged,
            )
        raise NotImplementedError(
            f"the native engine has no '{connector}' source yet (databases arrive with issue #3); "
            f"available: csv"
        )


def default_stream(plan: JobPlan) -> str:
    return str(plan.asset.object or plan.asset.name)
