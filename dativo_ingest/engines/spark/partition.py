"""What each Spark task runs on its share of the rows: the DuckDB stage, then Parquet files into the table.

The task gets the rows of its partition as Arrow batches (``mapInArrow``), casts and validates them with the very
``Stage`` the native engine uses (``stage/casts.py`` is the one specification of casts and violations), adds the
system columns, and writes the clean rows as Parquet data files straight under the table's data location
(pyiceberg's writer: field ids, partition split, target file size). It commits nothing: it returns one row per
file it wrote and one row of counts (with the quarantined rows, Arrow IPC), which the driver commits.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from dativo_ingest.stage.stage import Stage, StageField
from dativo_ingest.stream import Batch, Rejected

#: what every task returns: one row per data file, then one row of counts
RESULT_SCHEMA = pa.schema([
    pa.field("kind", pa.string()),  # "file" | "counts"
    pa.field("path", pa.string()),
    pa.field("rows", pa.int64()),
    pa.field("rows_in", pa.int64()),
    pa.field("quarantined", pa.int64()),
    pa.field("deduplicated", pa.int64()),
    pa.field("examples", pa.string()),  # JSON list
    pa.field("quarantine", pa.binary()),  # Arrow IPC stream of the quarantined rows, or null
])
#: the DDL of ``RESULT_SCHEMA`` as Spark takes it
RESULT_DDL = ("kind string, path string, rows long, rows_in long, quarantined long, deduplicated long, "
              "examples string, quarantine binary")
#: test hook (``DATIVO_FAULT=spark-task``): a task SIGKILLs the driver once it has written a data file
TASK_FAULT = "spark-task"
#: test hook (``DATIVO_FAULT=spark-task-error``): a task fails once it has written a data file
TASK_ERROR = "spark-task-error"


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs, pickled to the executors once per read (no catalog, no plan)."""

    stream: str
    origin: str
    fields: tuple[StageField, ...]
    primary_key: tuple[str, ...]
    run_id: str
    ingest_ts: datetime
    add_ingest_date: bool
    chunk_rows: int
    salt: str | None
    #: the rows are already filtered by the committed cursor (a database read)
    cursor_applied: bool
    #: the table's metadata (JSON) and file IO properties: enough to write its data files
    metadata_json: str
    io_properties: dict[str, str]
    location: str
    write_schema: pa.Schema
    #: the first 16 hex digits of every data file's uuid in this run (the rest: partition and attempt)
    run_prefix: str
    #: the driver's pid and the fault to inject (tests)
    driver_pid: int = 0
    fault: str | None = None
    #: CSV text that means "no value": turned into nulls before the stage (as the native CSV reader does)
    null_values: tuple[str, ...] = ()


def task_uuid(run_prefix: str, partition: int, attempt: int) -> uuid.UUID:
    """The uuid in the names of one task attempt's data files: the run's prefix, then partition and attempt."""
    return uuid.UUID(f"{run_prefix}{partition & 0xFFFFFFFF:08x}{attempt & 0xFFFFFFFF:08x}")


def run_prefix_text(run_prefix: str) -> str:
    """How the run's prefix shows in a data file's name (``xxxxxxxx-xxxx-xxxx``)."""
    return f"{run_prefix[:8]}-{run_prefix[8:12]}-{run_prefix[12:16]}"


def task_function(spec: TaskSpec) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function ``mapInArrow`` runs on every partition (see the module docstring)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context else 0
        attempt = context.attemptNumber() if context else 0
        yield from run_task(spec, batches, partition=partition, attempt=attempt)

    return run


def run_task(spec: TaskSpec, batches: Iterator[pa.RecordBatch], *, partition: int, attempt: int
             ) -> Iterator[pa.RecordBatch]:
    """Stage and write one partition's rows; yield the files written and the counts (``RESULT_SCHEMA``)."""
    from pyiceberg.io import load_file_io
    from pyiceberg.table.metadata import TableMetadataUtil

    from dativo_ingest.sinks.iceberg.datafiles import write_data_files

    metadata = TableMetadataUtil.parse_raw(spec.metadata_json)
    io = load_file_io(spec.io_properties, spec.location)
    write_uuid = task_uuid(spec.run_prefix, partition, attempt)
    counter = itertools.count(0)
    files: list[tuple[str, int]] = []
    origin = f"{spec.origin} (partition {partition})"

    def write(chunk: pa.Table) -> None:
        if chunk.num_rows == 0:
            return
        if not chunk.schema.equals(spec.write_schema):
            chunk = chunk.cast(spec.write_schema)
        for data_file in write_data_files(metadata, io, chunk, write_uuid=write_uuid, counter=counter):
            files.append((data_file.file_path, data_file.record_count))
        if spec.fault == TASK_FAULT and spec.driver_pid:
            os.kill(spec.driver_pid, signal.SIGKILL)
        if spec.fault == TASK_ERROR:
            raise RuntimeError("fault injection: a task fails after writing a data file")

    with tempfile.TemporaryDirectory(prefix="dativo-spark-") as spill:
        stage = Stage(list(spec.fields), run_id=spec.run_id, ingest_ts=spec.ingest_ts,
                      add_ingest_date=spec.add_ingest_date, primary_key=list(spec.primary_key),
                      chunk_rows=spec.chunk_rows, spill_dir=spill, salt=spec.salt)
        try:
            for batch in batches:
                batch = _without_extra_fields(_plain(batch, spec.null_values), stage, spec.stream, origin)
                for chunk in stage.add(Batch(spec.stream, batch, origin=origin, cursor_applied=spec.cursor_applied)):
                    write(chunk)
            for chunk in stage.drain():
                write(chunk)
            quarantine = stage.take_quarantine()
            stats = stage.stats
        finally:
            stage.close()
    n = len(files)
    yield pa.RecordBatch.from_pydict({
        "kind": ["file"] * n + ["counts"],
        "path": [p for p, _ in files] + [None],
        "rows": [r for _, r in files] + [None],
        "rows_in": [None] * n + [stats.rows_in],
        "quarantined": [None] * n + [stats.rows_quarantined],
        "deduplicated": [None] * n + [stats.rows_deduplicated],
        "examples": [None] * n + [json.dumps(stats.examples)],
        "quarantine": [None] * n + [_ipc(quarantine)],
    }, schema=RESULT_SCHEMA)


def _without_extra_fields(batch: pa.RecordBatch, stage: Stage, stream: str, origin: str) -> pa.RecordBatch:
    """The batch without the CSV lines that had more fields than the header (``files.EXTRA_FIELDS`` holds the
    first extra one): each goes to the stage as a record that could not be parsed (quarantined in warn mode, a
    failure in strict), as the native reader sends it; the column itself is dropped."""
    import pyarrow.compute as pc

    from dativo_ingest.engines.spark.files import EXTRA_FIELDS

    if EXTRA_FIELDS not in batch.schema.names:
        return batch
    extra = batch.column(EXTRA_FIELDS)
    rest = batch.drop_columns([EXTRA_FIELDS])
    if extra.null_count == len(extra):
        return rest
    bad = pc.is_valid(extra)
    width = rest.num_columns
    for row in rest.filter(bad).to_pylist():
        values = ["" if v is None else str(v) for v in row.values()]
        stage.reject(Rejected(stream, origin, None, f"more fields than the header's {width} (the line is not read)",
                              ",".join(values) + ",…"))
    return rest.filter(pc.invert(bad))


def _plain(batch: pa.RecordBatch, null_values: tuple[str, ...] = ()) -> pa.RecordBatch:
    """The batch without Spark's per-field metadata (the stage needs only names and types), the CSV null
    markers of text columns as nulls."""
    import pyarrow.compute as pc

    schema = pa.schema([pa.field(f.name, f.type, True) for f in batch.schema])
    columns = list(batch.columns)
    if null_values:
        markers = pa.array(list(null_values), pa.string())
        for i, column in enumerate(columns):
            if pa.types.is_string(column.type):
                columns[i] = pc.if_else(pc.is_in(column, value_set=markers), pa.nulls(len(column), pa.string()),
                                        column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _ipc(table: pa.Table | None) -> bytes | None:
    if table is None or table.num_rows == 0:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_ipc(data: bytes) -> pa.Table:
    """The quarantined rows a task returned."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def examples(text: Any) -> list[str]:
    """The examples of violations a task returned."""
    return list(json.loads(text)) if text else []


__all__ = ["RESULT_DDL", "RESULT_SCHEMA", "TASK_ERROR", "TASK_FAULT", "TaskSpec", "examples", "read_ipc",
           "run_prefix_text", "run_task", "task_function", "task_uuid"]
