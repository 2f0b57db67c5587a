"""Rows waiting for deduplication by primary key: one store per target table, shared by every stream of a run,
so that everything one commit writes to a table holds each key once (last row wins)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from dativo_ingest.sqltext import quote_ident, quote_literal


class KeyedRows:
    """A DuckDB table (in memory, spilling to ``spill_dir``) of clean rows, drained deduplicated by key."""

    def __init__(self, schema: pa.Schema, duck_columns: Sequence[tuple[str, str]], primary_key: Sequence[str], *,
                 chunk_rows: int = 1_000_000, spill_dir: str | None = None, memory_limit: str = "512MB") -> None:
        self.schema = schema
        self.primary_key = list(primary_key)
        self.chunk_rows = chunk_rows
        self.pending_rows = 0
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
        self.con.register("clean_rows", rows)
        try:
            self.con.execute("INSERT INTO staged SELECT * FROM clean_rows")
        finally:
            self.con.unregister("clean_rows")
        self.pending_rows += rows.num_rows

    def drain(self) -> Iterator[tuple[pa.Table, int]]:
        """``(chunk, rows dropped as duplicates so far)``: every row held, each key once (the last added wins);
        the store is empty afterwards."""
        if not self.pending_rows:
            return
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

    def close(self) -> None:
        """Release the DuckDB connection (and its spill files)."""
        self.con.close()


__all__ = ["KeyedRows"]
