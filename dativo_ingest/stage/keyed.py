"""Rows waiting for deduplication by primary key: one store per target table, shared by every stream of a run,
so that everything one commit writes to a table holds each key once (last row wins).

The rows of a commit are held as Arrow tables while they fit in ``hold_bytes``, and past that appended to an Arrow
IPC file in ``spill_dir`` (a plain copy, no encoding); only their key columns stay in memory. At the
drain one Arrow hash group-by counts the distinct keys, and when no key repeats (the usual case) the rows go out as
they are, without a trip through DuckDB. When a key repeats, the rows go into a DuckDB table (spilling to disk) and
come out deduplicated there."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from dativo_ingest.machine import duckdb_connection
from dativo_ingest.sqltext import quote_ident

#: rows of one commit held in memory as Arrow up to this many bytes (the rest waits in a spill file)
HOLD_BYTES = 256 << 20


class KeyedRows:
    """Clean rows of one commit, held as Arrow (in memory, then in a spill file under ``spill_dir``), drained
    deduplicated by key (see the module docstring)."""

    def __init__(self, schema: pa.Schema, duck_columns: Sequence[tuple[str, str]], primary_key: Sequence[str], *,
                 chunk_rows: int = 1_000_000, spill_dir: str | None = None, memory_limit: str = "512MB",
                 hold_bytes: int = HOLD_BYTES) -> None:
        self.schema = schema
        self.primary_key = list(primary_key)
        self.chunk_rows = chunk_rows
        self.hold_bytes = hold_bytes
        self.spill_dir = spill_dir
        self.pending_rows = 0
        #: rows held in memory, in arrival order
        self._held: list[pa.Table] = []
        self._held_bytes = 0
        #: rows past ``hold_bytes``, in arrival order after the held ones (None: none yet this commit)
        self._spill: _SpillFile | None = None
        #: the key columns of every row of this commit (held and spilled), in arrival order
        self._keys: list[pa.Table] = []
        self._duck_columns = list(duck_columns)
        self._memory_limit = memory_limit
        #: DuckDB, connected when a key first repeats (unique keys never need it)
        self._con: Any = None

    @property
    def con(self) -> Any:
        """The DuckDB connection holding the ``staged`` table, made on first use."""
        if self._con is None:
            con = duckdb_connection(memory_limit=self._memory_limit, spill_dir=self.spill_dir)
            cols = ", ".join(f"{quote_ident(name)} {kind}" for name, kind in self._duck_columns)
            con.execute(f"CREATE TABLE staged ({cols})")
            self._con = con
        return self._con

    def add(self, rows: pa.Table) -> None:
        """Hold these clean rows (in the store's column order) until the next ``drain``."""
        if rows.num_rows == 0:
            return
        self.pending_rows += rows.num_rows
        self._keys.append(rows.select(self.primary_key))
        if self._spill is None and self._held_bytes + rows.nbytes <= self.hold_bytes:
            self._held.append(rows)
            self._held_bytes += rows.nbytes
            return
        if self._spill is None:
            self._spill = _SpillFile(self.schema, self.spill_dir)
        self._spill.write(rows)

    def _insert(self, rows: pa.Table) -> None:
        self.con.register("clean_rows", rows)
        try:
            self.con.execute("INSERT INTO staged SELECT * FROM clean_rows")
        finally:
            self.con.unregister("clean_rows")

    def _unique_keys(self) -> bool:
        keys = pa.concat_tables(self._keys) if len(self._keys) > 1 else self._keys[0]
        try:
            return keys.group_by(self.primary_key).aggregate([]).num_rows == keys.num_rows
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):  # a key type Arrow cannot hash
            return False

    def _tables(self) -> Iterator[pa.Table]:
        """Every row of this commit, in arrival order: the held tables, then the spilled ones."""
        yield from self._held
        if self._spill is not None:
            yield from self._spill.tables()

    def _reset(self) -> None:
        self._held, self._held_bytes, self._keys, self.pending_rows = [], 0, [], 0
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def drain(self) -> Iterator[tuple[pa.Table, int]]:
        """``(chunk, rows dropped as duplicates so far)``: every row held, each key once (the last added wins);
        the store is empty afterwards."""
        if not self.pending_rows:
            return
        if self._unique_keys():  # no key repeats: the rows go out as they are
            try:
                yield from ((chunk, 0) for chunk in self._chunks(self._tables()))
            finally:
                self._reset()
            return
        for table in self._tables():
            self._insert(table)
        pending = self.pending_rows
        self._reset()
        keys = ", ".join(quote_ident(k) for k in self.primary_key)
        distinct = self.con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM staged)").fetchall()
        duplicates = pending - int(distinct[0][0])
        reader = self.con.sql(
            f"SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY rowid DESC) = 1"
        ).to_arrow_reader(self.chunk_rows)
        first = True
        for chunk in self._chunks(pa.Table.from_batches([b]) for b in reader):
            yield chunk, duplicates if first else 0
            first = False
        self.con.execute("DELETE FROM staged")

    def _chunks(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """``tables`` cut and joined into chunks of ``chunk_rows`` rows (the last may be smaller), in the schema."""
        pending: list[pa.Table] = []
        rows = 0
        for table in tables:
            start = 0
            while start < table.num_rows:
                part = table.slice(start, self.chunk_rows - rows)
                start += part.num_rows
                pending.append(part)
                rows += part.num_rows
                if rows >= self.chunk_rows:
                    yield _joined(pending).cast(self.schema)
                    pending, rows = [], 0
        if pending:
            yield _joined(pending).cast(self.schema)

    def close(self) -> None:
        """Release the DuckDB connection (and the spill files)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        if self._con is not None:
            self._con.close()
            self._con = None


def _joined(tables: list[pa.Table]) -> pa.Table:
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


class _SpillFile:
    """An Arrow IPC stream file of rows, written in order and read back batch by batch (no parse: a plain copy;
    not memory-mapped, so that the pages read do not stay in the process's memory)."""

    def __init__(self, schema: pa.Schema, folder: str | None) -> None:
        self.schema = schema
        fd, self.path = tempfile.mkstemp(prefix="dativo-keyed-", suffix=".arrows", dir=folder)
        self._sink = pa.OSFile(self.path, "wb")
        os.close(fd)
        self._writer: pa.ipc.RecordBatchStreamWriter | None = pa.ipc.new_stream(self._sink, schema)

    def write(self, rows: pa.Table) -> None:
        """Append rows (cast to the file's schema)."""
        assert self._writer is not None
        self._writer.write_table(rows.cast(self.schema) if rows.schema != self.schema else rows)

    def tables(self) -> Iterator[pa.Table]:
        """The rows written, batch by batch, in order (the file is finished first)."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None
        with pa.OSFile(self.path, "rb") as source:
            for batch in pa.ipc.open_stream(source):
                yield pa.Table.from_batches([batch])

    def close(self) -> None:
        """Remove the file."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


__all__ = ["HOLD_BYTES", "KeyedRows"]
