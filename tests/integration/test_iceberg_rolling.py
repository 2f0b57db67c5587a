"""An unpartitioned table's rows go on into one open data file, row group by row group, until it reaches the
table's target size (``sinks/iceberg/datafiles.RollingDataFile``): read back by DuckDB's iceberg extension, and a
run that stops before its commit leaves no file behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dativo_ingest.sinks.iceberg.sink import IcebergSink
from dativo_ingest.state.envelope import StateEnvelope
from tests.acceptance.helpers import catalog
from tests.independent_reader import current_metadata, duckdb_query

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string()),
                    pa.field("amount", pa.float64())])


def _sink(home: Path, **properties: str) -> IcebergSink:
    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    sink = IcebergSink(catalog(home), "acme.t", SCHEMA, properties=properties)
    sink.current_state()
    return sink


def _chunk(start: int, rows: int) -> pa.Table:
    ids = pa.array(range(start, start + rows), pa.int64())
    return pa.table({"id": ids, "name": pc.cast(ids, pa.string()), "amount": pc.multiply(pc.cast(ids, pa.float64()),
                                                                                         0.5)}, schema=SCHEMA)


def _parquet_files(home: Path) -> list[Path]:
    return sorted((home / "warehouse").rglob("*.parquet"))


def _read_back(home: Path) -> tuple[int, int, float]:
    table = catalog(home).load_table("acme.t")
    metadata = current_metadata(Path(table.location().removeprefix("file://")))
    [[rows, distinct, total]] = duckdb_query(
        f"SELECT count(*), count(DISTINCT id), sum(amount) FROM iceberg_scan('{metadata}')")
    return rows, distinct, total


def _state() -> StateEnvelope:
    return StateEnvelope(engine="native", dialect="native", streams={"t": {"files": {"a.csv": {"size": 1}}}})


def test_chunks_written_one_by_one_land_in_one_file_of_row_groups(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sink = _sink(home, **{"write.parquet.row-group-limit": "20000"})
    for i in range(5):
        sink.write(_chunk(i * 20_000, 20_000))
    assert len(_parquet_files(home)) == 1  # written as the rows came, one file open
    result = sink.commit(_state())
    assert (result.rows, result.files) == (100_000, 1)
    assert _read_back(home) == (100_000, 100_000, sum(range(100_000)) * 0.5)
    (path,) = _parquet_files(home)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 5 and meta.num_rows == 100_000
    assert pq.read_schema(path).field("id").metadata[b"PARQUET:field_id"] == b"1"  # Iceberg's field ids
    (task,) = catalog(home).load_table("acme.t").scan().plan_files()
    assert task.file.record_count == 100_000 and task.file.lower_bounds and task.file.upper_bounds


def test_small_chunks_are_gathered_into_row_groups_of_the_tables_size(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sink = _sink(home)  # Iceberg's default: 1,048,576 rows (or 128 MB) per row group
    for i in range(5):
        sink.write(_chunk(i * 20_000, 20_000))
    assert _parquet_files(home) == []  # gathered, not yet a row group
    assert sink.commit(_state()).files == 1
    (path,) = _parquet_files(home)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    assert _read_back(home)[:2] == (100_000, 100_000)


def test_a_file_is_closed_and_another_started_at_the_target_size(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one_chunk = _chunk(0, 10_000).nbytes
    sink = _sink(home, **{"write.target-file-size-bytes": str(one_chunk * 2)})
    for i in range(7):
        sink.write(_chunk(i * 10_000, 10_000))
    result = sink.commit(_state())
    assert (result.rows, result.files) == (70_000, 4)  # 2 + 2 + 2 chunks, then the last one sealed by the commit
    assert _read_back(home) == (70_000, 70_000, sum(range(70_000)) * 0.5)
    sink.write(_chunk(70_000, 10_000))  # the next commit starts a new file
    assert sink.commit(_state()).files == 1
    assert _read_back(home)[:2] == (80_000, 80_000)


def test_an_aborted_or_closed_run_leaves_no_open_file_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sink = _sink(home, **{"write.parquet.row-group-limit": "1000"})
    sink.write(_chunk(0, 1_000))
    sink.commit(_state())
    committed = _parquet_files(home)
    sink.write(_chunk(1_000, 1_000))
    assert len(_parquet_files(home)) == 2
    sink.abort()
    assert _parquet_files(home) == committed
    sink.write(_chunk(2_000, 1_000))
    sink.close()  # a run that ends without committing these rows
    assert _parquet_files(home) == committed
    assert _read_back(home)[:2] == (1_000, 1_000)


def test_big_chunks_are_encoded_on_two_lanes_into_two_files_and_nothing_is_lost(tmp_path: Path) -> None:
    from dativo_ingest.sinks.iceberg.datafiles import MIN_LANE_ROWS

    home = tmp_path / "home"
    sink = _sink(home, **{"write.parquet.row-group-limit": str(MIN_LANE_ROWS)})
    rows = 2 * MIN_LANE_ROWS + 1  # big enough for both lanes; odd, so the slices differ by one row
    for i in range(3):
        sink.write(_chunk(i * rows, rows))
    assert len(_parquet_files(home)) == 2
    result = sink.commit(_state())
    assert (result.rows, result.files) == (3 * rows, 2)
    assert _read_back(home) == (3 * rows, 3 * rows, sum(range(3 * rows)) * 0.5)
    sink.write(_chunk(3 * rows, rows))
    sink.abort()  # both lanes' open files go
    assert len(_parquet_files(home)) == 2
