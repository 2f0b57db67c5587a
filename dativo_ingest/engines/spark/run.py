"""The driver of a Spark run: read in parallel, let the tasks stage and write, then ONE commit of ours.

A ``SparkJobRun`` is the native runner (``run.job.JobRun``) whose rows never pass through this process: Spark
tasks cast, validate and write the Parquet data files under the table's location (``partition``); the driver
takes exactly the files the tasks report (their footers give rows, bounds and partition: ``add_written_files``)
and commits them with the state envelope in one Iceberg commit, through the same commit step as every engine
(strict violations fail it, warn quarantines, overwrite and merge by primary key as the sink does them). A run
that fails deletes the files its tasks wrote; a killed driver leaves only files no snapshot references, and the
state unchanged, so the next run reads the same rows again: none lost, none twice.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dativo_ingest.config.plan import JobPlan
from dativo_ingest.engines.native.sql.common import SqlTable, resolve_tables
from dativo_ingest.engines.spark.files import read_files
from dativo_ingest.engines.spark.jdbc import read_table
from dativo_ingest.engines.spark.options import SparkInputs, inputs
from dativo_ingest.engines.spark.partition import (
    RESULT_DDL,
    TaskSpec,
    examples,
    read_ipc,
    run_prefix_text,
    task_function,
)
from dativo_ingest.engines.spark.session import parallelism, spark_session
from dativo_ingest.errors import DativoError, SourceError
from dativo_ingest.paths import scratch_dir
from dativo_ingest.run.job import FAULT_ENV, JobRun, ProgressFn, RunResult
from dativo_ingest.run.writer import BackgroundWriter
from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.stage.deletes import DeletedKeys
from dativo_ingest.stage.stage import INGEST_DATE, MAX_EXAMPLES, CursorFilter, StageStats
from dativo_ingest.state.cursor import cursor_after
from dativo_ingest.state.envelope import StateEnvelope

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass
class StreamResult:
    """What the tasks of one stream reported, in the shape the runner's commit step reads from a stage."""

    stats: StageStats = field(default_factory=StageStats)
    quarantine: list[pa.Table] = field(default_factory=list)
    #: the database read's cursor: the commit step takes it from the pending stream state instead
    cursor: CursorFilter | None = None
    max_cursor: Any = None
    pending_rows: int = 0

    def drain(self) -> list[pa.Table]:
        """Nothing: the tasks wrote every clean row already."""
        return []

    def take_quarantine(self) -> pa.Table | None:
        """The rows the tasks quarantined (once)."""
        if not self.quarantine:
            return None
        table, self.quarantine = pa.concat_tables(self.quarantine), []
        return table

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class SourceRead:
    """One stream's DataFrame, and what its state becomes once its rows are committed."""

    stream: str
    origin: str
    frame: DataFrame
    partitions: int
    cursor_field: str | None = None
    cursor_value: str | None = None
    null_values: tuple[str, ...] = ()
    #: files: the stream's ``files`` state once these rows are committed
    files_state: dict[str, Any] | None = None


class SparkJobRun(JobRun):
    """One run of a job on Spark (see the module docstring)."""

    def __init__(self, plan: JobPlan, *, progress: ProgressFn | None = None) -> None:
        super().__init__(plan, progress=progress)
        self.inputs: SparkInputs = inputs(plan)
        #: every data file of this run has this in its name (a failed run deletes what its tasks wrote)
        self.run_prefix = uuid.uuid4().hex[:16]
        self.adopted: set[str] = set()

    def execute(self) -> RunResult:
        """Read, stage and write on Spark; commit here (see the module docstring)."""
        started = time.monotonic()
        plan = self.plan
        if not isinstance(self.sink, IcebergSink):
            raise DativoError(f"{plan.job_path}: engine spark writes Iceberg tables only (target_connector: iceberg)")
        committed = self.sink.current_state()
        self.envelope = committed.mapped(plan.secrets.reveal) if committed else StateEnvelope(engine=plan.engine)
        self._check_committed_cursors()
        self._complete_quarantine()
        self.dialect = "native"  # the native engine's stream state: either engine resumes from it
        self.writer = BackgroundWriter(self.sink.write)
        log.info("run %s: %s → %s (engine spark on %s, write mode %s, validation %s)", self.run_id, plan.job_name,
                 self.identifier, self.inputs.options.master, plan.write_mode, plan.validation_mode)
        try:
            self.quality = self._new_quality()
            with spark_session(self.inputs.options, plan.job_path) as spark:
                reads = self._reads(spark)
                if self.primary_key and len(reads) > 1:  # one key, one row per commit: across streams too
                    self._write_stream(together(reads), also=reads)
                elif reads:
                    for read in reads:
                        self._write_stream(read)
                if plan.read.detect_deletes and self.inputs.is_jdbc:
                    self._read_keys(spark)
            self._commit(final=True)
        except BaseException:
            self.writer.close()
            self.sink.abort()
            self._delete_unadopted()
            raise
        finally:
            self.writer.close()
            for stage in self.stages.values():
                stage.close()
            for resource in (self.quality, self.deleted_keys, self.sink, self.quarantine_sink):
                if resource is not None:
                    resource.close()
        self.result.seconds = time.monotonic() - started
        return self.result

    # -- reads -----------------------------------------------------------------------------------
    def _reads(self, spark: Any) -> list[SourceRead]:
        inp, plan = self.inputs, self.plan
        if inp.is_jdbc:
            out = []
            for table in resolve_tables(inp.tables, inp.query, default_stream=plan.default_stream, read=plan.read):
                after = self.envelope.cursor_value(table.stream, table.cursor_field)
                read = read_table(spark, inp, table, after=after, lookback_seconds=plan.read.lookback_seconds,
                                  primary_key=self.primary_key)
                out.append(SourceRead(read.stream, read.origin, read.frame, read.partitions, table.cursor_field,
                                      read.cursor_value))
            return out
        reads = read_files(spark, inp, self.envelope.streams, skip_unchanged=plan.read.skip_unchanged_files)
        partitions = inp.options.num_partitions or parallelism(spark)
        return [SourceRead(r.stream, r.origin, r.frame, partitions, null_values=r.null_values,
                           files_state=r.files_state) for r in reads]

    def _spec(self, read: SourceRead) -> TaskSpec:
        assert isinstance(self.sink, IcebergSink)
        write_schema = self.sink.write_schema  # opens (creates) the table: its metadata is what tasks write to
        table = self.sink.table
        assert table is not None
        return TaskSpec(
            stream=read.stream, origin=read.origin, fields=tuple(self.fields), primary_key=tuple(self.primary_key),
            run_id=self.run_id, ingest_ts=self.ingest_ts, add_ingest_date=INGEST_DATE in self.partitioning,
            chunk_rows=self.inputs.chunk_rows, salt=self.plan.protection.salt, cursor_applied=True,
            metadata_json=table.metadata.model_dump_json(), io_properties=dict(table.io.properties),
            location=table.location(), write_schema=write_schema, run_prefix=self.run_prefix,
            driver_pid=os.getpid(), fault=os.environ.get(FAULT_ENV), null_values=read.null_values)

    def _keyed(self, read: SourceRead) -> DataFrame:
        """With a primary key, every version of a key in the same task (it keeps the last one)."""
        if not self.primary_key:
            return read.frame
        names = {c.lower(): c for c in read.frame.columns}
        columns = [names[k.lower()] for k in self.primary_key if k.lower() in names]
        if len(columns) != len(self.primary_key):
            return read.frame  # a key column is missing: every row is a violation, the tasks say so
        return read.frame.repartition(max(read.partitions, 1), *columns)

    def _write_stream(self, read: SourceRead, also: list[SourceRead] | None = None) -> None:
        """Run the tasks on one read (or on several streams read together: ``also`` are those streams, whose
        state advances with it), take their files into the next commit, and advance the streams' state."""
        spec = self._spec(read)
        try:
            result = self._keyed(read).mapInArrow(task_function(spec), RESULT_DDL).toArrow()
        except Exception as exc:
            raise spark_error(exc, read.origin) from None
        rows = result.to_pylist()
        paths = [r["path"] for r in rows if r["kind"] == "file"]
        stream = self.stages.get(read.stream)
        if not isinstance(stream, StreamResult):
            stream = StreamResult()
            self.stages[read.stream] = stream  # type: ignore[assignment]
        for r in rows:
            if r["kind"] != "counts":
                continue
            stream.stats.rows_in += r["rows_in"] or 0
            stream.stats.rows_quarantined += r["quarantined"] or 0
            stream.stats.rows_deduplicated += r["deduplicated"] or 0
            for example in examples(r["examples"]):
                if len(stream.stats.examples) < MAX_EXAMPLES:
                    stream.stats.examples.append(example)
            if r["quarantine"]:
                stream.quarantine.append(read_ipc(r["quarantine"]))
        self.adopted.update(paths)
        written = self.sink.add_written_files(paths)
        if self.quality is not None:
            self._measure(paths)
        stream.stats.rows_clean += written
        rows_in = sum(r["rows_in"] or 0 for r in rows if r["kind"] == "counts")
        self.result.rows_read += rows_in
        log.info("spark: %s: %d rows read, %d written in %d files, %d quarantined", read.origin, rows_in, written,
                 len(paths), stream.stats.rows_quarantined)
        for each in [read, *(also or [])]:
            self._advance(each)
        if self.progress:
            self.progress(read.stream, self.result.rows_read)

    def _read_keys(self, spark: Any) -> None:
        """``detect_deletes``: every primary key each table holds now, read after its rows (in parallel, the
        keys collected here), so the commit deletes the table's rows whose key is gone from the source."""
        inp, plan = self.inputs, self.plan
        self.deleted_keys = DeletedKeys(self.fields, self.primary_key, spill_dir=str(scratch_dir()))
        for table in resolve_tables(inp.tables, inp.query, default_stream=plan.default_stream, read=plan.read):
            whole = SqlTable(table.stream, table.name, table.query, None)  # every row, not those after the cursor
            read = read_table(spark, inp, whole, after=None, lookback_seconds=0, primary_key=self.primary_key)
            names = {c.lower(): c for c in read.frame.columns}
            try:
                keys = read.frame.select(*[names.get(k.lower(), k) for k in self.primary_key]).toArrow()
            except Exception as exc:
                raise spark_error(exc, read.origin) from None
            for batch in keys.to_batches():
                self.deleted_keys.add(table.stream, batch)
            self.deleted_keys.add(table.stream, None)

    def _advance(self, read: SourceRead) -> None:
        """The stream's state once this read is committed: its cursor, or its files' fingerprints."""
        if read.cursor_field and read.cursor_value is not None:
            previous = self.envelope.cursor_value(read.stream, read.cursor_field)
            if cursor_after(read.cursor_value, previous):
                self.pending_streams[read.stream] = {"cursor": {"field": read.cursor_field,
                                                                "value": read.cursor_value}}
        if read.files_state is not None:
            self.pending_streams[read.stream] = {**self.pending_streams.get(read.stream, {}),
                                                 "files": dict(read.files_state)}

    def _measure(self, paths: list[str]) -> None:
        """The asset's quality rules judge the rows of the commit: the new files, read back here batch by batch
        (memory bounded by a row group, time by one sequential read of what the tasks wrote)."""
        import pyarrow.parquet as pq

        assert self.quality is not None and isinstance(self.sink, IcebergSink) and self.sink.table is not None
        io = self.sink.table.io
        for path in paths:
            with io.new_input(path).open() as stream:
                for batch in pq.ParquetFile(stream).iter_batches():
                    self.quality.add(batch)

    def _delete_unadopted(self) -> None:
        """Delete the data files this run's tasks wrote that no commit took (failed tasks, a failed read)."""
        table = self.sink.table if isinstance(self.sink, IcebergSink) else None
        if table is None:
            return
        try:
            from pyarrow.fs import FileSelector, FileType
            from pyiceberg.io.pyarrow import PyArrowFileIO

            if not isinstance(table.io, PyArrowFileIO):
                return
            scheme, netloc, path = PyArrowFileIO.parse_location(f"{table.location()}/data")
            fs = table.io.fs_by_scheme(scheme, netloc)
            marker = run_prefix_text(self.run_prefix)
            for info in fs.get_file_info(FileSelector(path, recursive=True, allow_not_found=True)):
                # the listing's paths hold the bucket (s3) or start at / (file): with the scheme, the data file's
                # URI; a file a commit may reference (its outcome unknown) is the sink's to keep
                if info.type == FileType.File and marker in info.base_name and \
                        f"{scheme}://{info.path}" not in self.adopted and info.path not in self.adopted:
                    fs.delete_file(info.path)
        except Exception as exc:  # best effort: an unreferenced file is never read
            log.warning("could not delete the unreferenced data files of run %s: %s", self.run_id, exc)


def together(reads: list[SourceRead]) -> SourceRead:
    """Several streams of one table as one read (columns matched by name), so the key shuffle puts every
    version of a key in one task whichever stream it comes from."""
    frame = reads[0].frame
    for other in reads[1:]:
        frame = frame.unionByName(other.frame, allowMissingColumns=True)
    return SourceRead(reads[0].stream, f"{len(reads)} streams ({', '.join(r.stream for r in reads)})", frame,
                      max(sum(r.partitions for r in reads), 1), null_values=reads[0].null_values)


def spark_error(exc: Exception, origin: str) -> DativoError:
    """A failed Spark job as one line: our own error when a task raised one, else the first line Spark gave."""
    if isinstance(exc, DativoError):
        return exc
    text = str(exc)
    for kind in ("SourceError", "ValidationFailed", "ConfigError", "DativoError", "InfrastructureError"):
        marker = f"dativo_ingest.errors.{kind}: "
        if marker in text:
            return SourceError(text.split(marker, 1)[1].splitlines()[0])
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("at ")]
    if "Traceback (most recent call last)" in text:  # a Python task failed: its exception is the last line of it
        lines = [line for line in lines if not line.startswith(("File ", "^", "SQLSTATE"))]
        tail = text.split("Traceback (most recent call last)", 1)[1]
        found = [line.strip() for line in tail.splitlines() if ": " in line and not line.startswith(" ")]
        if found:
            return SourceError(f"spark: reading {origin} failed in a task: {found[0][:300]}")
    first = next((line for line in lines if "Error" in line or "Exception" in line), lines[0] if lines else "")
    return SourceError(f"spark: reading {origin} failed: {first[:300]}")


def run_spark_job(plan: JobPlan, *, progress: ProgressFn | None = None) -> RunResult:
    """Run one job on Spark to completion (see the module docstring)."""
    return SparkJobRun(plan, progress=progress).execute()


__all__ = ["SparkJobRun", "StreamResult", "run_spark_job", "spark_error"]
