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
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.config.read_policy import check_read_policy
from dativo_ingest.engines import get_engine
from dativo_ingest.engines.base import read_from, start_early
from dativo_ingest.errors import EXIT_OK, EXIT_PARTIAL, DativoError, ValidationFailed
from dativo_ingest.paths import scratch_dir
from dativo_ingest.quality import (
    failure_message,
    quality_summary,
    rules_for_asset,
    snapshot_properties,
)
from dativo_ingest.run.writer import BackgroundWriter
from dativo_ingest.sinks.base import Sink
from dativo_ingest.sinks.factory import open_sink
from dativo_ingest.sinks.layout import table_identifier, target_partitioning
from dativo_ingest.stage.casts import parses_as
from dativo_ingest.stage.deletes import DeletedKeys
from dativo_ingest.stage.keyed import KeyedRows
from dativo_ingest.stage.stage import CursorFilter, Stage, asset_fields, quarantine_schema
from dativo_ingest.state.cursor import cursor_after, cursor_to_text
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.state.mirror import read_mirror, write_mirror
from dativo_ingest.stream import Batch, Checkpoint, Log, Rejected, SourceKeys, Trace

if TYPE_CHECKING:
    from dativo_ingest.quality.evaluate import QualityEvaluator

log = logging.getLogger(__name__)

FAULT_ENV = "DATIVO_FAULT"  # test hook: SIGKILL the process at a named point
#: a data commit's record of the quarantine files it owns (``{"tag", "files"}``)
QUARANTINE_PROPERTY = "dativo.quarantine"
#: how many recent data commits a run checks for a quarantine left unpublished
RECENT_COMMITS = 5


#: rows per chunk handed to a sink that appends to open files: a Parquet row group for each of two lanes
STREAMED_CHUNK_ROWS = 256 * 1024

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
    #: the asset's quality rules measured on the last commit (None: the asset has none)
    quality: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """1 when rows were quarantined or a quality rule failed in warn mode, else 0."""
        failed_rules = bool(self.quality and self.quality.get("failed"))
        return EXIT_PARTIAL if self.rows_quarantined or failed_rules else EXIT_OK

    def summary(self) -> dict[str, Any]:
        return {
            "job": self.job, "tenant": self.tenant_id, "table": self.table, "run_id": self.run_id,
            "rows_read": self.rows_read, "rows_written": self.rows_written,
            "rows_quarantined": self.rows_quarantined, "rows_skipped": self.rows_skipped,
            "rows_deleted": self.rows_deleted,
            "commits": self.commits, "snapshot_id": self.snapshot_id, "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            **({"quality": self.quality} if self.quality is not None else {}),
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
        self.fields = asset_fields(plan.asset, plan.protection.actions)
        self.primary_key = list(plan.asset.primary_key)
        self.partitioning = target_partitioning(plan)
        check_read_policy(plan.read, plan.asset, write_mode=plan.write_mode, job_path=plan.job_path,
                          asset_path=plan.asset_path)
        self.commit_every = plan.target.commit_every_rows or 0
        self.stages: dict[str, Stage] = {}
        self.pending_streams: dict[str, dict[str, Any]] = {}
        #: engine-wide state (a Checkpoint without a stream, e.g. an Airbyte GLOBAL state's shared part)
        self.pending_shared: dict[str, Any] = {}
        #: the dialect of the last checkpoint (``airbyte.stream`` …); None: the engine's name
        self.dialect: str | None = None
        #: the job's table (or plain-file dataset), and its quarantine once a row is quarantined
        self.sink: Sink = open_sink(plan, run_id=self.run_id, ingest_date=self.ingest_ts.date())
        self.quarantine_sink: Sink | None = None
        #: the sink's writes, on a thread of their own (started by ``execute``)
        self.writer: BackgroundWriter | None = None
        self.deleted_keys: DeletedKeys | None = None
        #: one dedup store for every stream of the table: a commit holds each key once
        self.keyed: KeyedRows | None = None
        #: the asset's quality rules, measured on the rows of each commit (None: it has none)
        self.quality: QualityEvaluator | None = None

    # -- the run ---------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        started = time.monotonic()
        plan = self.plan
        engine = get_engine(plan.engine)
        # the connector's process starts (with the local mirror's state) while the catalog is opened and the committed
        # state read; it is read only once that state is known to be the one it was given (engines.launchers.early)
        early = start_early(engine, plan, self._mirrored_state)
        try:
            committed = self.sink.current_state()  # stored with ${NAME} for secrets (Secrets.conceal): revealed here
            log.debug("committed state of %s read", self.identifier)
            self.envelope = committed.mapped(plan.secrets.reveal) if committed else StateEnvelope(engine=plan.engine)
            self._check_committed_cursors()
            self._complete_quarantine()
            self.quality = self._new_quality()
        except BaseException:
            if early is not None:
                early.close()
            raise
        log.info("run %s: %s → %s (engine %s, write mode %s, validation %s)", self.run_id, plan.job_name,
                 self.identifier, plan.engine, plan.write_mode, plan.validation_mode)
        self.writer = BackgroundWriter(self.sink.write)
        try:
            for message in read_from(engine, plan, self.envelope, early):
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
            self.writer.close()  # no file is being written while the sink deletes this run's files
            self.sink.abort()
            raise
        finally:
            if early is not None:
                early.close()
            self.writer.close()
            for stage in self.stages.values():
                stage.close()
            for resource in (self.keyed, self.deleted_keys, self.quality, self.sink, self.quarantine_sink):
                if resource is not None:
                    resource.close()
        self.result.seconds = time.monotonic() - started
        return self.result

    def _mirrored_state(self) -> StateEnvelope:
        """The local mirror's state, revealed as the committed one is: what a connector started early is given."""
        mirrored = read_mirror(self.plan.tenant_id, self.plan.job_name)
        return mirrored.mapped(self.plan.secrets.reveal) if mirrored else StateEnvelope(engine=self.plan.engine)

    # -- messages --------------------------------------------------------------------------------
    def _stage(self, stream: str) -> Stage:
        key = stream
        if key in self.stages:
            return self.stages[key]
        after = None
        cursor_field = self.plan.read.cursor_for(stream)
        if cursor_field:
            after = self.envelope.cursor_value(stream, cursor_field)
        stage = Stage(
            self.fields,
            run_id=self.run_id,
            ingest_ts=self.ingest_ts,
            add_ingest_date="ingest_date" in self.partitioning,
            primary_key=self.primary_key,
            cursor=CursorFilter(cursor_field, after, self.plan.read.lookback_seconds) if cursor_field else None,
            chunk_rows=self._chunk_rows,
            spill_dir=str(scratch_dir()),
            keyed=self.keyed,
            salt=self.plan.protection.salt,
        )
        if self.keyed is None and stage.keyed is not None:  # the first stage's store serves the whole table
            self.keyed = stage.hand_over_keyed()
        self.stages[key] = stage
        return stage

    def _check_committed_cursors(self) -> None:
        """Every committed cursor of an asset field must be a value of that field's type: a cursor that does not
        parse would filter nothing (re-reading everything) or be handed to the source as garbage."""
        types = {f.name: f.type for f in self.fields}
        for stream, entry in self.envelope.streams.items():
            cursor = entry.get("cursor") if isinstance(entry, dict) else None
            if not isinstance(cursor, dict) or cursor.get("field") not in types or cursor.get("value") is None:
                continue
            kind = types[cursor["field"]]
            if not parses_as(str(cursor["value"]), kind):
                raise DativoError(
                    f"{self.identifier}: the committed cursor of stream '{stream}' ({cursor['field']} = "
                    f"'{self.plan.secrets.redact(str(cursor['value']))[:40]}') is not a {kind.name} — it was written "
                    f"before the field's type changed, or by hand: `dativo_ingest state reset --config "
                    f"{self.plan.job_path}` starts the job over")

    @property
    def _chunk_rows(self) -> int:
        """Rows the stage gathers before handing them to the writer: a row group when the sink appends to an open
        file (so encoding overlaps reading), else what makes a file (``target.chunk_rows`` decides when set)."""
        if self.plan.target.chunk_rows:
            return self.plan.target.chunk_rows
        return STREAMED_CHUNK_ROWS if self.sink.streams_rows else 1_000_000

    def _new_quality(self) -> QualityEvaluator | None:
        if not rules_for_asset(self.plan.asset):
            return None
        from dativo_ingest.quality.evaluate import QualityEvaluator  # DuckDB: only for an asset with rules

        return QualityEvaluator.for_asset(self.plan.asset, self.sink.schema, source=self.plan.asset_path,
                                          spill_dir=scratch_dir())

    def _write(self, chunk: Any) -> None:
        """Give clean rows to the sink (and to the quality rules, which judge what is committed)."""
        if self.quality is not None:
            self.quality.add(chunk)
        assert self.writer is not None
        self.writer.put(chunk)
        _fault("mid-stage")

    def _on_batch(self, message: Batch) -> None:
        _fault("mid-read")
        stage = self._stage(message.stream)
        for chunk in stage.add(message):
            self._write(chunk)
        self.result.rows_read += message.data.num_rows
        if self.progress:
            self.progress(message.stream, self.result.rows_read)

    def _on_rejected(self, message: Rejected) -> None:
        if self.plan.validation_mode == "strict":
            where = f"{message.origin}:{message.line}" if message.line else message.origin
            raise ValidationFailed(
                f"{where}: malformed record: {message.reason} — {self._nothing_committed()} "
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
        pending = self.sink.pending_rows + sum(stage.pending_rows for stage in self.stages.values()) + \
            (self.keyed.pending_rows if self.keyed is not None else 0)
        if self._may_commit_early and pending >= self.commit_every:
            self._commit(final=False)

    # -- commit ----------------------------------------------------------------------------------
    def _commit(self, *, final: bool) -> None:
        for stage in self.stages.values():
            for chunk in stage.drain():
                self._write(chunk)
        assert self.writer is not None
        self.writer.flush()  # every data file of this commit is written
        violations = sum(s.stats.rows_quarantined for s in self.stages.values())
        if violations and self.plan.validation_mode == "strict":
            examples = [e for s in self.stages.values() for e in s.stats.examples][:5]
            raise ValidationFailed(
                f"{violations} row(s) violate the asset {self.plan.asset.name} ({self.plan.asset_path}) in strict mode"
                f" — {self._nothing_committed()}; first: {' | '.join(examples)} "
                f"(fix the data, or set schema_validation_mode: warn to quarantine them)"
            )
        streams = self._streams_to_commit()
        quarantined, quarantine_files = self._write_quarantine()
        if final and self.deleted_keys is not None and self.deleted_keys.complete:
            self._delete_gone_rows(self.deleted_keys)
        if not streams and not self.pending_shared and not self.sink.pending_rows and not self.sink.pending_deletes:
            return
        envelope = self.envelope.advanced(run_id=self.run_id, streams=streams, engine=self.plan.engine,
                                          dialect=self.dialect or ("native" if self.plan.engine == "native"
                                                                   else self.plan.engine))
        envelope.shared.update(self.pending_shared)
        properties = {"dativo.run_id": self.run_id, **self._judge_quality()}
        tag = uuid.uuid4().hex
        if quarantine_files:  # the data commit names the quarantine files it owns: they land once, with it
            properties[QUARANTINE_PROPERTY] = orjson.dumps({"tag": tag, "files": quarantine_files}).decode()
        _fault("before-commit")
        pending, deletes = self.sink.pending_rows, self.sink.pending_deletes
        stored = envelope.mapped(self.plan.secrets.conceal)  # no secret reaches the table, the mirror or the summary
        try:
            commit = self.sink.commit(stored, properties)
        except BaseException:
            if self.quarantine_sink is not None:
                self.quarantine_sink.abort()  # nothing of this commit landed: neither do its quarantined rows
            raise
        _fault("after-commit")
        if quarantine_files:
            assert self.quarantine_sink is not None
            self.quarantine_sink.commit_once(tag, properties={"dativo.run_id": self.run_id})
        self.envelope = envelope
        self.pending_streams = {}
        self.pending_shared = {}
        self.result.commits += 1
        self.result.rows_written += pending
        self.result.rows_deleted += deletes
        self.result.rows_quarantined += quarantined
        self.result.snapshot_id = commit.snapshot_id
        self.result.state = stored.to_dict()
        self.result.rows_skipped = sum(s.stats.rows_skipped_by_cursor + s.stats.rows_deduplicated
                                       for s in self.stages.values())
        write_mirror(self.plan.tenant_id, self.plan.job_name, stored)
        log.info("committed snapshot %s to %s: %d rows, %d quarantined", commit.snapshot_id, self.identifier,
                 pending, quarantined)

    def _nothing_committed(self) -> str:
        """What a failure leaves, truthfully: nothing, or the earlier commits of this run (commit_every_rows)."""
        if not self.result.commits:
            return "nothing committed"
        return (f"nothing of the current commit written; this run's {self.result.commits} earlier commit(s) "
                f"({self.result.rows_written} rows, target.commit_every_rows) stay, and the next run continues "
                f"after them")

    @property
    def _may_commit_early(self) -> bool:
        """Whether a checkpoint may commit before the end (``commit_every_rows``): never while a commit replaces the
        table (overwrite, ACTIVATE_VERSION), which stages everything and replaces it in one commit at the end."""
        return bool(self.commit_every) and self.sink.write_mode != "overwrite"

    def _judge_quality(self) -> dict[str, str]:
        """The quality rules' results on this commit's rows, as commit properties; strict fails on a broken rule
        (nothing committed), warn records it and the run exits 1. A new measure starts for the next commit."""
        if self.quality is None:
            return {}
        results = self.quality.results()
        self.quality.close()
        self.quality = self._new_quality()
        self.result.quality = quality_summary(results)
        message = failure_message(results, self.plan.asset.name)
        if message and self.plan.validation_mode == "strict":
            raise ValidationFailed(f"{message} — {self._nothing_committed()} ({self.plan.asset_path}: fix the data or "
                                   f"the rule, "
                                   f"or set schema_validation_mode: warn to record failures and go on)")
        if message:
            log.warning(message)
        return snapshot_properties(results)

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

    def _write_quarantine(self) -> tuple[int, list[dict[str, Any]]]:
        """Write the rows quarantined since the last commit into (unpublished) files of the quarantine table:
        ``(rows, the files' descriptions)``. They are published right after the data commit that names them,
        exactly once (``Sink.commit_once`` under a tag the data commit records), so a run that fails or is killed
        before its data commit leaves none behind, and one killed between the two is completed by the next run
        (``_complete_quarantine``)."""
        tables = [t for s in self.stages.values() if (t := s.take_quarantine()) is not None]
        if not tables:
            return 0, []
        sink = self._quarantine_sink()
        rows = 0
        for table in tables:
            sink.write(conceal_column(table, "_dativo_origin", self.plan.secrets.conceal))
            rows += table.num_rows
        log.warning("%d row(s) quarantined to %s", rows, table_identifier(self.plan, quarantine=True))
        return rows, sink.describe_pending()

    def _quarantine_sink(self) -> Sink:
        if self.quarantine_sink is None:
            self.quarantine_sink = open_sink(self.plan, run_id=self.run_id, ingest_date=self.ingest_ts.date(),
                                             quarantine=quarantine_schema(self.fields))
            self.quarantine_sink.open()
        return self.quarantine_sink

    def _complete_quarantine(self) -> None:
        """Publish the quarantined rows of recent data commits whose own quarantine commit never landed (a run
        killed between the two): the data commit names the files and the tag, so this happens exactly once."""
        for props in self.sink.recent_properties(RECENT_COMMITS):
            raw = props.get(QUARANTINE_PROPERTY)
            if not raw:
                continue
            try:
                entry = orjson.loads(raw)
                done = self._quarantine_sink().commit_once(str(entry["tag"]), files=list(entry["files"]),
                                                           properties={"dativo.run_id": self.run_id})
            except (orjson.JSONDecodeError, KeyError, TypeError, FileNotFoundError, OSError) as exc:
                log.warning("could not complete the quarantine of an earlier commit of %s: %s", self.identifier,
                            type(exc).__name__)
                continue
            if done is not None:
                log.warning("published %d quarantined row(s) of an earlier commit that stopped before it could",
                            done.rows)


def conceal_column(table: pa.Table, name: str, conceal: Callable[[str], str]) -> pa.Table:
    """``table`` with the text column ``name`` passed through ``conceal`` (once per distinct value)."""
    column = table.column(name)
    values = pc.unique(column).to_pylist()
    mapping = {v: conceal(v) for v in values if v is not None}
    if all(k == v for k, v in mapping.items()):
        return table
    keys = pa.array(list(mapping), pa.string())
    replaced = pc.take(pa.array(list(mapping.values()), pa.string()), pc.index_in(column, value_set=keys))
    return table.set_column(table.schema.get_field_index(name), name, replaced)


def run_job(plan: JobPlan, *, progress: ProgressFn | None = None) -> RunResult:
    """Run one job to completion; raises ``DativoError`` subclasses on failure (nothing half-written)."""
    return JobRun(plan, progress=progress).execute()


__all__ = ["RunResult", "run_job"]
