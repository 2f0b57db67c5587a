"""Rows gone from the source: the source's current primary keys, anti-joined with the target's, in DuckDB.

Used by ``source.incremental.detect_deletes``: an incremental (cursor) read cannot see a hard delete, so
after the rows the engine sends every key the source holds now (``SourceKeys``); at the final commit the
target's keys that are not among them are deleted in the same Iceberg transaction as the new rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from dativo_ingest.machine import duckdb_connection
from dativo_ingest.sqltext import quote_ident
from dativo_ingest.stage.stage import StageField


class DeletedKeys:
    def __init__(self, fields: Sequence[StageField], primary_key: Sequence[str], *, spill_dir: str | None = None,
                 memory_limit: str = "512MB") -> None:
        by_name = {f.name: f for f in fields}
        self.primary_key = list(primary_key)
        self.types = {k: by_name[k].type.duckdb if by_name[k].type.duckdb != "JSON" else "VARCHAR"
                      for k in self.primary_key}
        self.con = duckdb_connection(memory_limit=memory_limit, spill_dir=spill_dir)
        cols = ", ".join(f"{quote_ident(k)} {t}" for k, t in self.types.items())
        self.con.execute(f"CREATE TABLE source_keys ({cols})")
        self.streams_started: set[str] = set()
        self.streams_complete: set[str] = set()
        self.rows = 0

    def add(self, stream: str, batch: pa.RecordBatch | None) -> None:
        """Keys of ``stream`` (cast to the asset's key types); ``None`` marks the stream's key list complete."""
        self.streams_started.add(stream)
        if batch is None:
            self.streams_complete.add(stream)
            return
        names = {n.lower(): n for n in batch.schema.names}
        exprs = ", ".join(f"CAST({quote_ident(names.get(k.lower(), k))} AS {t})" for k, t in self.types.items())
        self.con.register("incoming", batch)
        try:
            self.con.execute(f"INSERT INTO source_keys SELECT {exprs} FROM incoming")
        finally:
            self.con.unregister("incoming")
        self.rows += batch.num_rows

    @property
    def complete(self) -> bool:
        return bool(self.streams_started) and self.streams_started == self.streams_complete

    def gone(self, target_keys: Iterable[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
        """The target keys absent from the source (distinct), as an Arrow table in the target's types."""
        reader = pa.RecordBatchReader.from_batches(schema, target_keys)
        self.con.register("target_keys", reader)
        try:
            using = ", ".join(quote_ident(k) for k in self.primary_key)
            return self.con.sql(
                f"SELECT DISTINCT {using} FROM target_keys ANTI JOIN source_keys USING ({using})"
            ).to_arrow_table().cast(schema)
        finally:
            self.con.unregister("target_keys")

    def close(self) -> None:
        self.con.close()
