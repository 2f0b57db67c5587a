"""Run one job: engine → stage → sink, committing data and state together.

The runner opens the job's sink (``open_sink``), reads the state committed with its data, lets the engine
stream batches and checkpoints, casts and validates batches in the stage, writes data files as chunks fill,
and commits (data files + state envelope in one step: an Iceberg transaction or a run manifest) at the end of
the stream — and at checkpoints once ``target.commit_every_rows`` rows are pending, for long streams.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.engines import get_engine
from dativo_ingest.errors import EXIT_OK, EXIT_PARTIAL, ConfigError, ValidationFailed
from dativo_ingest.incremental import FULL_REFRESH_STRATEGIES, lookback_seconds
from dativo_ingest.paths import scratch_dir
from dativo_ingest.sinks.base import Sink
from dativo_ingest.sinks.factory import open_sink
from dativo_ingest.sinks.layout import table_identifier, target_partitioning
from dativo_ingest.stage.deletes import DeletedKeys
from dativo_ingest.stage.stage import CursorFilter, Stage, asset_fields
from dativo_ingest.state.cursor import cursor_after, cursor_to_text
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.state.mirror import write_mirror
from dativo_ingest.stream import Batch, Checkpoint, Log, Rejected, SourceKeys, Trace

log = logging.getLogger(__name__)

CURSOR_STRATEGIES = {"updated_at", "created", "updated_after", "cursor"}
FAULT_ENV = "DATIVO_FAULT"  # test hook: SIGKILL the process at a named point


ProgressFn = Callable[[str, int], None]


@dataclass
class RunResult:
    job: str
    tenant_id: str
    table: str
    run_id: str
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    rows_deleted: int = 0
    commits: int = 0
    snapshot_id: int | None = None
    seconds: float = 0.0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.rows_quarantined else EXIT_OK

    def summary(self) -> dict[str, Any]:
        return {
            "job": self.job, "tenant": self.tenant_id, "table": self.table, "run_id": self.run_id,
            "rows_read": self.rows_read, "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined, "rows_skipped": self.rows_skipped,
            "rows_deleted": self.rows_deleted,
            "commits": self.commits, "snapshot_id": self.snapshot_id, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
        }


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        log.warning("fault injection: SIGKILL at %s", point)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


class JobRun:
    """One execution of one job plan."""

    def __init__(self, plan: JobPlan, *, progress: ProgressFn | None = None) -> None:
        self.plan = plan
        self.progress = progress
        now = datetime.now(timezone.utc)
        self.ingest_ts = now
        self.run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self.identifier = table_identifier(plan)
        self.result = RunResult(plan.job_name, plan.tenant_id, self.identifier, self.run_id)
        self.fields = asset_fields(plan.asset)
        self.primary_key = list(plan.asset.primary_key)
        self.partitioning = target_partitioning(plan)
        incremental = dict(plan.source.get("incremental") or {})
        #: stream → cursor field (``None`` key: every other stream); empty for a full refresh
        self.cursor_fields = {} if plan.write_mode == "overwrite" else stream_cursor_fields(plan)
        self.lookback = lookback_seconds(incremental)
        self.commit_every = int(plan.target.get("commit_every_rows") or 0)
        self.stages: dict[str, Stage] = {}
        self.pending_streams: dict[str, dict[str, Any]] = {}
        #: engine-wide state (a Checkpoint without a stream, e.g. an Airbyte GLOBAL state's shared part)
        self.pending_shared: dict[str, Any] = {}
        #: the dialect of the last checkpoint (``airbyte.stream`` …); None: the engine's name
        self.dialect: str | None = None
        #: the job's table (or plain-file dataset), and its quarantine once a row is quarantined
        self.sink: Sink = open_sink(plan, run_id=self.run_id, ingest_date=self.ingest_ts.date())
        self.quarantine_sink: Sink | None = None
        self.deleted_keys: DeletedKeys | None = None
        if incremental.get("detect_deletes") and not (plan.write_mode == "merge" and self.primary_key):
            raise ConfigError(plan.job_path, "detect_deletes needs write_mode merge and a primary key in the asset",
                              field="source.incremental.detect_deletes",
                              fix=f"declare primary_key in {plan.asset_path}, or remove detect_deletes")

    # -- the run ---------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        started = time.monotonic()
        plan = self.plan
        self.envelope = self.sink.current_state() or StateEnvelope(engine=plan.engine)
        engine = get_engine(plan.engine)
        log.info("run %s: %s → %s (engine %s, write mode %s, validation %s)", self.run_id, plan.job_name,
                 self.identifier, plan.engine, plan.write_mode, plan.validation_mode)
        try:
            for message in engine.read(plan, self.envelope):
                if isinstance(message, Batch):
                    self._on_batch(message)
                elif isinstance(message, Checkpoint):
                    self._on_checkpoint(message)
                elif isinstance(message, Rejected):
                    self._on_rejected(message)
                elif isinstance(message, SourceKeys):
                    self._on_source_keys(message)
                elif isinstance(message, Log):
                    level = logging.getLevelName(message.level.upper())
                    log.log(level if isinstance(level, int) else logging.INFO, message.message)
                elif isinstance(message, Trace):
                    if message.kind == "activate_version":
                        self._on_activate_version(message)
                    log.debug("trace %s %s", message.kind, message.data)
            self._commit(final=True)
        except BaseException as exc:
            if getattr(exc, "commit_checkpointed", False):
                self._commit_before_failure()
            self.sink.abort()
            raise
        finally:
            for stage in self.stages.values():
                stage.close()
            if self.deleted_keys is not None:
                self.deleted_keys.close()
        self.result.seconds = time.monotonic() - started
        return self.result

    # -- messages --------------------------------------------------------------------------------
    def _stage(self, stream: str) -> Stage:
        key = stream
        if key in self.stages:
            return self.stages[key]
        after = None
        cursor_field = self.cursor_fields.get(stream, self.cursor_fields.get(None))
        if cursor_field:
            committed = (self.envelope.streams.get(stream) or {}).get("cursor") or {}
            after = committed.get("value") if committed.get("field") == cursor_field else None
        stage = Stage(
            self.fields,
            run_id=self.run_id,
            ingest_ts=self.ingest_ts,
            add_ingest_date="ingest_date" in self.partitioning,
            primary_key=self.primary_key,
            cursor=CursorFilter(cursor_field, after, self.lookback) if cursor_field else None,
            chunk_rows=int(self.plan.target.get("chunk_rows") or 1_000_000),
            spill_dir=str(scratch_dir()),
        )
        self.stages[key] = stage
        return stage

    def _on_batch(self, message: Batch) -> None:
        _fault("mid-read")
        stage = self._stage(message.stream)
        for chunk in stage.add(message):
            self.sink.write(chunk)
            _fault("mid-stage")
        self.result.rows_read += message.data.num_rows
        if self.progress:
            self.progress(message.stream, self.result.rows_read)

    def _on_rejected(self, message: Rejected) -> None:
        if self.plan.validation_mode == "strict":
            where = f"{message.origin}:{message.line}" if message.line else message.origin
            raise ValidationFailed(
                f"{where}: malformed record: {message.reason} — nothing committed "
                f"(fix the file, or set schema_validation_mode: warn to quarantine such rows)"
            )
        self._stage(message.stream).reject(message)

    def _on_source_keys(self, message: SourceKeys) -> None:
        if self.deleted_keys is None:
            self.deleted_keys = DeletedKeys(self.fields, self.primary_key, spill_dir=str(scratch_dir()))
        self.deleted_keys.add(message.stream, message.data)

    def _on_activate_version(self, message: Trace) -> None:
        """Singer ACTIVATE_VERSION: the table holds exactly this run's rows (a full-table replace)."""
        if self.sink.write_mode == "overwrite":
            return
        if not self.sink.replace_at_first_commit():  # the first commit replaces the table; later ones append
            log.warning("ACTIVATE_VERSION of stream %s after this run committed: rows of earlier runs are kept "
                        "(set write_mode: overwrite for a full-table stream)", message.data.get("stream"))

    def _on_checkpoint(self, message: Checkpoint) -> None:
        self.dialect = message.dialect
        if message.stream is None:
            self.pending_shared.update(message.state)
        else:
            stream = message.stream
            self.pending_streams[stream] = {**self.pending_streams.get(stream, {}), **message.state}
        # rows still in the stages count too: with a primary key they wait there to be deduplicated
        pending = self.sink.pending_rows + sum(stage.pending_rows for stage in self.stages.values())
        if self.commit_every and pending >= self.commit_every:
            self._commit(final=False)

    # -- commit ----------------------------------------------------------------------------------
    def _commit(self, *, final: bool) -> None:
        for stage in self.stages.values():
            for chunk in stage.drain():
                self.sink.write(chunk)
                _fault("mid-stage")
        violations = sum(s.stats.rows_quarantined for s in self.stages.values())
        if violations and self.plan.validation_mode == "strict":
            examples = [e for s in self.stages.values() for e in s.stats.examples][:5]
            raise ValidationFailed(
                f"{violations} row(s) violate the asset {self.plan.asset.name} ({self.plan.asset_path}) in strict mode"
                f" — nothing committed; first: {' | '.join(examples)} "
                f"(fix the data, or set schema_validation_mode: warn to quarantine them)"
            )
        streams = self._streams_to_commit()
        quarantined = self._write_quarantine()
        if final and self.deleted_keys is not None and self.deleted_keys.complete:
            self._delete_gone_rows(self.deleted_keys)
        if not streams and not self.pending_shared and not self.sink.pending_rows and not self.sink.pending_deletes:
            return
        envelope = self.envelope.advanced(run_id=self.run_id, streams=streams, engine=self.plan.engine,
                                          dialect=self.dialect or ("native" if self.plan.engine == "native"
                                                                   else self.plan.engine))
        envelope.shared.update(self.pending_shared)
        _fault("before-commit")
        pending, deletes = self.sink.pending_rows, self.sink.pending_deletes
        commit = self.sink.commit(envelope, {"dativo.run_id": self.run_id})
        _fault("after-commit")
        self.envelope = envelope
        self.pending_streams = {}
        self.pending_shared = {}
        self.result.commits += 1
        self.result.rows_written += pending
        self.result.rows_deleted += deletes
        self.result.rows_quarantined += quarantined
        self.result.snapshot_id = commit.snapshot_id
        self.result.state = envelope.to_dict()
        self.result.rows_skipped = sum(s.stats.rows_skipped_by_cursor + s.stats.rows_deduplicated
                                       for s in self.stages.values())
        write_mirror(self.plan.tenant_id, self.plan.job_name, envelope)
        log.info("committed snapshot %s to %s: %d rows, %d quarantined", commit.snapshot_id, self.identifier,
                 pending, quarantined)

    def _commit_before_failure(self) -> None:
        """The engine failed, but said every row it sent is covered by a checkpoint it sent: keep those."""
        try:
            self._commit(final=False)
        except Exception as exc:  # noqa: BLE001 - the engine's error is the one to report
            log.warning("could not commit the rows checkpointed before the failure: %s", exc)

    def _delete_gone_rows(self, keys: DeletedKeys) -> None:
        schema, batches = self.sink.current_keys()
        gone = keys.gone(batches, schema)
        log.info("detect_deletes: %d key(s) in the source, %d row(s) gone from it", keys.rows, gone.num_rows)
        self.sink.delete_keys(gone)

    def _streams_to_commit(self) -> dict[str, dict[str, Any]]:
        # a checkpoint updates its stream's committed state (an empty one, as SQL sources send after a table
        # that yielded nothing new, must not wipe the cursor)
        streams = {k: {**self.envelope.stream(k), **v} for k, v in self.pending_streams.items()}
        for key, stage in self.stages.items():
            if stage.cursor is None or stage.max_cursor is None:
                continue
            entry = streams.setdefault(key, self.envelope.stream(key))
            committed = (self.envelope.streams.get(key) or {}).get("cursor") or {}
            previous = committed.get("value") if committed.get("field") == stage.cursor.field else None
            value = cursor_to_text(stage.max_cursor)
            if cursor_after(value, previous):
                entry["cursor"] = {"field": stage.cursor.field, "value": value}
            stage.max_cursor = None
        return {k: v for k, v in streams.items() if v != (self.envelope.streams.get(k) or {})}  # changes only

    def _write_quarantine(self) -> int:
        tables = [t for s in self.stages.values() if (t := s.take_quarantine()) is not None]
        if not tables:
            return 0
        if self.quarantine_sink is None:
            schema = next(iter(self.stages.values())).quarantine_schema()
            self.quarantine_sink = open_sink(self.plan, run_id=self.run_id, ingest_date=self.ingest_ts.date(),
                                             quarantine=schema)
            self.quarantine_sink.open()
        rows = 0
        for table in tables:
            self.quarantine_sink.write(table)
            rows += table.num_rows
        self.quarantine_sink.commit(None, {"dativo.run_id": self.run_id})
        log.warning("%d row(s) quarantined to %s", rows, table_identifier(self.plan, quarantine=True))
        return rows


def stream_cursor_fields(plan: JobPlan) -> dict[str | None, str]:
    """Which field is each stream's cursor: a table's own ``cursor_field``, else ``source.incremental.cursor_field``.

    Returned as ``{stream: field}`` plus ``{None: field}`` for every other stream; empty when the job has
    no cursor (no cursor field, or a full-refresh or file-based strategy).
    """
    incremental = dict(plan.source.get("incremental") or {})
    strategy = str(incremental.get("strategy") or "").lower()
    if strategy in FULL_REFRESH_STRATEGIES:
        return {}
    names = set(plan.asset.field_names)
    fields: dict[str | None, str] = {}
    default = incremental.get("cursor_field")
    if default and (strategy in CURSOR_STRATEGIES or not strategy):
        fields[None] = str(default)
    for entry in plan.source.get("tables") or []:
        if isinstance(entry, dict) and entry.get("cursor_field"):
            fields[str(entry.get("object") or entry.get("name"))] = str(entry["cursor_field"])
    for stream, name in fields.items():
        if name not in names:
            where = "source.incremental.cursor_field" if stream is None else "source.tables[].cursor_field"
            raise ConfigError(plan.job_path, f"cursor_field '{name}' is not in the asset schema", field=where,
                              fix=f"use one of the fields of {plan.asset_path}")
    return fields


def run_job(plan: JobPlan, *, progress: ProgressFn | None = None) -> RunResult:
    """Run one job to completion; raises ``DativoError`` subclasses on failure (nothing half-written)."""
    return JobRun(plan, progress=progress).execute()


__all__ = ["RunResult", "run_job"]
