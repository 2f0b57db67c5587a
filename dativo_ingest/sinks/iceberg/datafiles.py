"""Writing a table's Parquet data files: the project's only use of pyiceberg's private API, behind ``check_pyiceberg``.

Two ways, one file format and the same statistics (pyiceberg computes both):

- ``data_files`` / ``write_data_files``: a whole Arrow table at once, split by partition and target size
  (pyiceberg's own writer) — partitioned tables, and merge rewrites.
- ``RollingDataFile``: rows appended to one open file as row groups of the table's row-group size (rows are
  gathered until then: dictionaries restart at every row group, and 128k-row groups cost twice the CPU of
  1M-row ones), the file closed when it reaches the table's target size (``write.target-file-size-bytes``,
  measured as pyiceberg measures it: Arrow bytes before encoding) — so encoding overlaps reading and the last
  row group is all that is left at a commit. Unpartitioned tables only. ``RollingDataFiles`` keeps one such
  file per lane and encodes big chunks on all lanes at once.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as package_version
from typing import Any

import pyarrow as pa
from pyiceberg.io import FileIO
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import Record

from dativo_ingest.errors import DativoError

#: the pyiceberg releases whose private API this module was written against (major, minor)
PYICEBERG_SUPPORTED = ((0, 12),)
#: pyiceberg's default ``write.target-file-size-bytes``
DEFAULT_TARGET_BYTES = 512 * 1024 * 1024
#: Arrow bytes one file gathers at most for a row group (below the table's size when that is bigger): memory
#: stays flat from 1M to 10M rows with two lanes
GROUP_BYTES_HELD = 64 * 1024 * 1024
#: the fewest rows a lane of ``RollingDataFiles`` is given at once
MIN_LANE_ROWS = 64 * 1024


def check_pyiceberg() -> None:
    """Raise unless the installed pyiceberg is one whose private write/scan API this module uses."""
    found = tuple(int(p) for p in package_version("pyiceberg").split(".")[:2])
    if found not in PYICEBERG_SUPPORTED:
        wanted = " or ".join(f"{major}.{minor}.*" for major, minor in PYICEBERG_SUPPORTED)
        raise DativoError(f"writing Iceberg data files needs pyiceberg {wanted}, found {package_version('pyiceberg')}: "
                          f"install the version pinned in requirements.txt")


@functools.cache
def pyiceberg_internals() -> Any:
    """pyiceberg's module holding the private functions the sink uses, once its version is checked."""
    check_pyiceberg()
    import pyiceberg.io.pyarrow as internals

    return internals


def data_files(table: Table, data: pa.Table, *, write_uuid: uuid.UUID, counter: itertools.count[int]) -> list[DataFile]:
    """Write ``data`` as Parquet data files of ``table`` (split by partition and target size), not yet committed."""
    return write_data_files(table.metadata, table.io, data, write_uuid=write_uuid, counter=counter)


def write_data_files(metadata: TableMetadata, io: FileIO, data: pa.Table, *, write_uuid: uuid.UUID,
                     counter: itertools.count[int]) -> list[DataFile]:
    """``data_files`` from a table's metadata and file IO alone (where no catalog is at hand: a Spark task)."""
    files = pyiceberg_internals()._dataframe_to_data_files(table_metadata=metadata, df=data, io=io,
                                                           write_uuid=write_uuid, counter=counter)
    return list(files)


def check_schema(table: Table, schema: pa.Schema) -> None:
    """Raise pyiceberg's own error unless rows of ``schema`` can be written to ``table`` as they are."""
    pyiceberg_internals()._check_pyarrow_schema_compatible(table.metadata.schema(), provided_schema=schema,
                                                           format_version=table.metadata.format_version)


def target_file_bytes(metadata: TableMetadata) -> int:
    """The table's ``write.target-file-size-bytes`` (pyiceberg's default when unset)."""
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    value = property_as_int(metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, DEFAULT_TARGET_BYTES)
    return int(value or DEFAULT_TARGET_BYTES)


def row_group_limits(metadata: TableMetadata) -> tuple[int, int]:
    """Rows and Arrow bytes at which a row group is written: the table's ``write.parquet.row-group-limit`` and
    ``write.parquet.row-group-size-bytes`` (Iceberg's defaults: 1,048,576 rows, 128 MB)."""
    from pyiceberg.table import TableProperties
    from pyiceberg.utils.properties import property_as_int

    rows = property_as_int(metadata.properties, TableProperties.PARQUET_ROW_GROUP_LIMIT,
                           TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT)
    size = property_as_int(metadata.properties, TableProperties.PARQUET_ROW_GROUP_SIZE_BYTES,
                           TableProperties.PARQUET_ROW_GROUP_SIZE_BYTES_DEFAULT)
    return int(rows or TableProperties.PARQUET_ROW_GROUP_LIMIT_DEFAULT), int(
        size or TableProperties.PARQUET_ROW_GROUP_SIZE_BYTES_DEFAULT)


class RollingDataFile:
    """One data file of an unpartitioned table open at a time: ``write`` appends row groups and returns the files
    it finished (the target size reached); ``finish`` closes the open one; ``abandon`` closes and deletes it."""

    def __init__(self, metadata: TableMetadata, io: FileIO, *, write_uuid: uuid.UUID,
                 counter: itertools.count[int]) -> None:
        if not metadata.spec().is_unpartitioned():
            raise ValueError("RollingDataFile writes unpartitioned tables only")
        internals = pyiceberg_internals()
        self._metadata = metadata
        self._io = io
        self._write_uuid = write_uuid
        self._counter = counter
        self._target = target_file_bytes(metadata)
        self._file_schema = internals.sanitize_column_names(metadata.schema())
        self._model = internals.FileFormatFactory.get(FileFormat.PARQUET)
        self._locations = internals.load_location_provider(table_location=metadata.location,
                                                           table_properties=metadata.properties)
        rows, size = row_group_limits(metadata)
        self._group_rows, self._group_bytes = rows, min(size, GROUP_BYTES_HELD)
        self._arrow_schema: pa.Schema | None = None
        self._task_schema: Any = None
        self._writer: Any = None
        self._output: Any = None
        self._path: str | None = None
        self._bytes = 0
        #: rows gathered for the next row group (a small one costs: dictionaries restart at every row group)
        self._held: list[pa.Table] = []
        self._held_rows = 0
        self._held_bytes = 0

    def write(self, data: pa.Table) -> list[DataFile]:
        """Append ``data`` to the open file (as part of a row group of the table's size); the files this finished."""
        if data.num_rows == 0:
            return []
        self._held.append(data)
        self._held_rows += data.num_rows
        self._held_bytes += data.nbytes
        self._bytes += data.nbytes
        if self._held_rows >= self._group_rows or self._held_bytes >= self._group_bytes:
            self._write_group()
        return self.finish() if self._bytes >= self._target else []

    def _write_group(self) -> None:
        if not self._held:
            return
        group = pa.concat_tables(self._held) if len(self._held) > 1 else self._held[0]
        self._held, self._held_rows, self._held_bytes = [], 0, 0
        if self._writer is None:
            self._open()
        self._writer.write(self._as_file_schema(group))

    def finish(self) -> list[DataFile]:
        """Close the open file and describe it (nothing open: nothing)."""
        self._write_group()
        if self._writer is None:
            return []
        writer, path, output = self._writer, self._path, self._output
        self._writer, self._path, self._output, self._bytes = None, None, None, 0
        statistics = writer.close()
        return [DataFile.from_args(
            content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET, partition=Record(),
            file_size_in_bytes=len(output), sort_order_id=None, spec_id=self._metadata.default_spec_id,
            equality_ids=None, key_metadata=None, **statistics.to_serialized_dict())]

    def abandon(self) -> None:
        """Close the open file and delete it (best effort: an unreferenced file is never read)."""
        self._held, self._held_rows, self._held_bytes = [], 0, 0
        if self._writer is None:
            return
        writer, path = self._writer, self._path
        self._writer, self._path, self._output, self._bytes = None, None, None, 0
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - the file goes either way
            pass
        try:
            self._io.delete(path)
        except Exception:  # noqa: BLE001 - an orphan file is harmless
            pass

    def _open(self) -> None:
        name = f"00000-{next(self._counter)}-{self._write_uuid}.parquet"  # pyiceberg's own naming (WriteTask)
        self._path = self._locations.new_data_location(data_file_name=name)
        self._output = self._io.new_output(self._path)
        self._writer = self._model.create_writer(self._output, self._file_schema, self._metadata.properties)

    def _as_file_schema(self, data: pa.Table) -> pa.Table:
        """``data`` with the file schema's names and field ids, as pyiceberg writes them."""
        internals = pyiceberg_internals()
        if self._arrow_schema is None or not self._arrow_schema.equals(data.schema):
            from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE
            from pyiceberg.utils.config import Config

            self._downcast = Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False
            self._task_schema = internals.pyarrow_to_schema(
                data.schema, name_mapping=self._metadata.schema().name_mapping,
                downcast_ns_timestamp_to_us=self._downcast, format_version=self._metadata.format_version)
            self._arrow_schema = data.schema
        batches = [internals._to_requested_schema(requested_schema=self._file_schema, file_schema=self._task_schema,
                                                  batch=batch, downcast_ns_timestamp_to_us=self._downcast,
                                                  include_field_ids=True, format_model=self._model)
                   for batch in data.to_batches()]
        return pa.Table.from_batches(batches)


class RollingDataFiles:
    """``RollingDataFile`` in parallel lanes: a chunk of at least ``lanes`` × ``MIN_LANE_ROWS`` rows is cut into one
    contiguous slice per lane, and the lanes encode their slices at the same time (pyarrow's Parquet writer releases
    the GIL but encodes one column after another: one lane keeps one core busy). Smaller chunks go to the first
    lane, so a small run writes one file."""

    def __init__(self, metadata: TableMetadata, io: FileIO, *, write_uuid: uuid.UUID, counter: itertools.count[int],
                 lanes: int = 1) -> None:
        self.files = [RollingDataFile(metadata, io, write_uuid=write_uuid, counter=counter)
                      for _ in range(max(1, lanes))]
        self._pool: ThreadPoolExecutor | None = None

    def write(self, data: pa.Table) -> list[DataFile]:
        """Append ``data`` (sliced over the lanes when big enough); the files this finished, if any."""
        lanes = len(self.files)
        if lanes == 1 or data.num_rows < lanes * MIN_LANE_ROWS:
            return self.files[0].write(data)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="dativo-parquet")
        step = -(-data.num_rows // lanes)
        slices = [data.slice(i * step, step) for i in range(lanes)]
        done: list[DataFile] = []
        for finished in self._pool.map(lambda pair: pair[0].write(pair[1]), zip(self.files, slices, strict=True)):
            done.extend(finished)
        return done

    def finish(self) -> list[DataFile]:
        """Close every lane's open file; their descriptions."""
        self._shutdown()
        return [data_file for lane in self.files for data_file in lane.finish()]

    def abandon(self) -> None:
        """Close and delete every lane's open file."""
        self._shutdown()
        for lane in self.files:
            lane.abandon()

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


__all__ = ["DEFAULT_TARGET_BYTES", "MIN_LANE_ROWS", "PYICEBERG_SUPPORTED", "RollingDataFile", "RollingDataFiles",
           "check_pyiceberg", "check_schema", "row_group_limits",
           "data_files", "pyiceberg_internals", "target_file_bytes", "write_data_files"]
