"""Rows waiting for deduplication by primary key: one store per target table, shared by every stream of a run,
so that everything one commit writes to a table holds each key once (last row wins).

The rows of a commit are held as Arrow tables while they fit in ``hold_bytes``; at the drain one Arrow hash
group-by counts the distinct keys, and when no key repeats (the usual case) the rows go out as they are, without
a trip through DuckDB. Past ``hold_bytes``, or when a key repeats, the rows go into a DuckDB table (spilling to
disk) and come out deduplicated there."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from dativo_ingest.sqltext import quote_ident, quote_literal

#: rows of one commit held as Arrow (not copied into DuckDB) up to this many bytes
HOLD_BYTES = 256 << 20


class KeyedRows:
    """Clean rows of one commit, held as Arrow or in a DuckDB table (in memory, spilling to ``spill_dir``), drained
    deduplicated by key (see the module docstring)."""

    def __init__(self, schema: pa.Schema, duck_columns: Sequence[tuple[str, str]], primary_key: Sequence[str], *,
                 chunk_rows: int = 1_000_000, spill_dir: str | None = None, memory_limit: str = "512MB",
                 hold_bytes: int = HOLD_BYTES) -> None:
        self.schema = schema
        self.primary_key = list(primary_key)
        self.chunk_rows = chunk_rows
        self.hold_bytes = hold_bytes
        self.pending_rows = 0
        #: rows held as Arrow, in arrival order (None once this commit's rows went to DuckDB)
        self._held: list[pa.Table] | None = []
        self._held_bytes = 0
        self.con = duckdb.connect(config={"threads": 2, "memory_limit": memory_limit})
        self.con.execute("SET TimeZone='UTC'")
        if spill_dir:
            self.con.execute(f"SET temp_directory={quote_literal(spill_dir)}")
        cols = ", ".join(f"{quote_ident(name)} {kind}" for name, kind in duck_columns)
        self.con.execute(f"CREATE TABLE staged ({cols})")

    def add(self, rows: pa.Table) -> None:
        """Hold these clean rows (in the store's column order) until the next ``drain``."""
        if rows.num_rows == 0:
            return
        self.pending_rows += rows.num_rows
        if self._held is not None and self._held_bytes + rows.nbytes <= self.hold_bytes:
            self._held.append(rows)
            self._held_bytes += rows.nbytes
            return
        self._to_duckdb()
        self._insert(rows)

    def _insert(self, rows: pa.Table) -> None:
        self.con.register("clean_rows", rows)
        try:
            self.con.execute("INSERT INTO staged SELECT * FROM clean_rows")
        finally:
            self.con.unregister("clean_rows")

    def _to_duckdb(self) -> None:
        """Move the rows held as Arrow into the DuckDB table (in order: the last added still wins)."""
        for held in self._held or []:
            self._insert(held)
        self._held, self._held_bytes = None, 0

    def _unique_keys(self, rows: pa.Table) -> bool:
        try:
            return rows.select(self.primary_key).group_by(self.primary_key).aggregate([]).num_rows == rows.num_rows
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):  # a key type Arrow cannot hash
            return False

    def drain(self) -> Iterator[tuple[pa.Table, int]]:
        """``(chunk, rows dropped as duplicates so far)``: every row held, each key once (the last added wins);
        the store is empty afterwards."""
        if not self.pending_rows:
            return
        if self._held is not None:
            held = pa.concat_tables(self._held) if len(self._held) > 1 else self._held[0]
            if self._unique_keys(held):  # no key repeats: the rows go out as they are
                self._held, self._held_bytes, self.pending_rows = [], 0, 0
                for start in range(0, held.num_rows, self.chunk_rows):
                    yield held.slice(start, self.chunk_rows).cast(self.schema), 0
                return
            self._to_duckdb()
        keys = ", ".join(quote_ident(k) for k in self.primary_key)
        distinct = self.con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM staged)").fetchall()
        duplicates = self.pending_rows - int(distinct[0][0])
        reader = self.con.sql(
            f"SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY rowid DESC) = 1"
        ).to_arrow_reader(self.chunk_rows)
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= self.chunk_rows:
                yield pa.Table.from_batches(pending).cast(self.schema), duplicates
                pending, rows, duplicates = [], 0, 0
        if pending:
            yield pa.Table.from_batches(pending).cast(self.schema), duplicates
        self.con.execute("DELETE FROM staged")
        self.pending_rows = 0
        self._held, self._held_bytes = [], 0  # the next commit's rows start as Arrow again

    def close(self) -> None:
        """Release the DuckDB connection (and its spill files)."""
        self.con.close()


__all__ = ["KeyedRows"]
