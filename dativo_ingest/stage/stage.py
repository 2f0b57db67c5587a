"""DuckDB stage: cast each batch to the asset's types, validate, dedup by primary key, quarantine.

Columns that already hold the asset's types are taken as they are (``stage.exact``); the others are cast in one
DuckDB query over the Arrow data (zero copy, no per-row Python). A batch where a row may violate the contract, or
whose rows the cursor filters, is cast whole in DuckDB. Rows
that violate the contract (a required value missing, a value that does not cast) are split off
with a reason. Clean rows are buffered into chunks for the sink; when the asset declares a
primary key they go to a DuckDB table instead (spilling to disk when large) and are deduplicated
there, last row wins, when the runner drains the stage at a commit point.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.config.models import AssetDefinition
from dativo_ingest.config.policy import MASK_TEXT
from dativo_ingest.errors import SourceError
from dativo_ingest.machine import duckdb_connection
from dativo_ingest.sqltext import quote_ident, quote_literal
from dativo_ingest.stage.casts import cast_sql
from dativo_ingest.stage.exact import exact_column
from dativo_ingest.stage.keyed import KeyedRows
from dativo_ingest.stage.types import LogicalType, parse_type
from dativo_ingest.stream import Batch, Rejected

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

SYSTEM_COLUMNS = ("_dativo_ingest_ts", "_dativo_run_id")
INGEST_DATE = "ingest_date"
QUARANTINE_COLUMNS = ("_dativo_reason", "_dativo_origin", "_dativo_row", "_dativo_raw")
SENSITIVE = {"PII", "SENSITIVE", "CONFIDENTIAL", "RESTRICTED", "SECRET"}
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class StageField:
    """One asset field as the stage casts, validates and (by the tenant's policy) protects it."""

    name: str
    type: LogicalType
    required: bool = False
    sensitive: bool = False
    #: ``mask`` or ``hash`` (``configs/policy.yaml``), applied after validation; None: stored as it is
    protect: str | None = None


#: the DuckDB variable holding the hash salt (bound as a parameter: the salt never appears in SQL text)
SALT_VARIABLE = "dativo_pii_salt"


def protected_sql(expr: str, how: str | None) -> str:
    """``expr`` as the policy stores it: masked (``***``), hashed (``sha256(salt || value)``) or as it is."""
    if how == "mask":
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {quote_literal(MASK_TEXT)} END"
    if how == "hash":
        return f"sha256(getvariable('{SALT_VARIABLE}') || CAST({expr} AS VARCHAR))"
    return expr


@dataclass(frozen=True)
class CursorFilter:
    """Keep rows whose cursor is after ``after`` (minus ``lookback`` for temporal cursors)."""

    field: str
    after: str | None = None
    lookback_seconds: int = 0


@dataclass
class StageStats:
    rows_in: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0
    rows_skipped_by_cursor: int = 0
    rows_deduplicated: int = 0
    examples: list[str] = field(default_factory=list)


class Stage:
    def __init__(
        self,
        fields: Sequence[StageField],
        *,
        run_id: str,
        ingest_ts: datetime,
        add_ingest_date: bool = False,
        primary_key: Sequence[str] = (),
        cursor: CursorFilter | None = None,
        chunk_rows: int = 1_000_000,
        spill_dir: str | None = None,
        memory_limit: str = "512MB",
        keyed: KeyedRows | None = None,
        salt: str | None = None,
    ) -> None:
        self.fields = list(fields)
        self.run_id = run_id
        self.ingest_ts = ingest_ts
        self.add_ingest_date = add_ingest_date and INGEST_DATE not in {f.name for f in self.fields}
        self.primary_key = list(primary_key)
        self.cursor = cursor
        self.chunk_rows = chunk_rows
        self.stats = StageStats()
        self.max_cursor: Any = None
        self._by_name = {f.name: f for f in self.fields}
        self._buffer: list[pa.Table] = []
        self._buffer_rows = 0
        self._quarantine: list[pa.Table] = []
        self._origin_rows: dict[str, int] = {}
        hashes = any(f.protect == "hash" for f in self.fields)
        if hashes and not salt:
            raise ValueError("a hashed field needs the policy's salt")
        #: bound in DuckDB when a field is hashed (never in SQL text)
        self._salt = salt if hashes else None
        self._memory_limit = memory_limit
        #: DuckDB, connected on first use: batches whose columns all take the Arrow path never need it
        self._con: duckdb.DuckDBPyConnection | None = None
        self.output_schema = self._output_schema()
        #: rows waiting for dedup by key: shared by every stream writing one table (``keyed``), else our own
        self.keyed: KeyedRows | None = keyed
        self._owns_keyed = False
        if self.primary_key and self.keyed is None:
            self.keyed = self.keyed_store(chunk_rows=chunk_rows, spill_dir=spill_dir, memory_limit=memory_limit)
            self._owns_keyed = True

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The stage's DuckDB connection (UTC; the hash salt bound as a variable, never in SQL text)."""
        if self._con is None:
            con = duckdb_connection(memory_limit=self._memory_limit)
            if self._salt:
                con.execute(f"SET VARIABLE {SALT_VARIABLE} = ?", [self._salt])
            self._con = con
        return self._con

    # -- schema --------------------------------------------------------------------------------
    @dataclass(frozen=True)
    class _Col:
        name: str
        duckdb: str

    def _duck_columns(self) -> list[_Col]:
        cols = [self._Col(f.name, f.type.duckdb if f.type.duckdb != "JSON" else "VARCHAR") for f in self.fields]
        cols += [self._Col("_dativo_ingest_ts", "TIMESTAMPTZ"), self._Col("_dativo_run_id", "VARCHAR")]
        if self.add_ingest_date:
            cols.append(self._Col(INGEST_DATE, "DATE"))
        return cols

    def _output_schema(self) -> pa.Schema:
        return output_schema(self.fields, add_ingest_date=self.add_ingest_date)

    def hand_over_keyed(self) -> KeyedRows:
        """This stage's own dedup store, handed over: the caller gives it to the other stages of the table (so a
        commit holds each key once), counts its pending rows and closes it."""
        assert self.keyed is not None
        self._owns_keyed = False
        return self.keyed

    def keyed_store(self, *, chunk_rows: int = 1_000_000, spill_dir: str | None = None,
                    memory_limit: str = "512MB") -> KeyedRows:
        """A dedup store for this stage's output (give it to every stage writing the same table)."""
        return KeyedRows(self.output_schema, [(c.name, c.duckdb) for c in self._duck_columns()], self.primary_key,
                         chunk_rows=chunk_rows, spill_dir=spill_dir, memory_limit=memory_limit)

    # -- SQL -------------------------------------------------------------------------------------
    def _cast_sql(self, batch_schema: pa.Schema, origin: str = "the source", *, filter_cursor: bool = True,
                  fields: Sequence[StageField] | None = None, system: bool = True) -> str:
        """The query casting ``batch``: ``fields`` (default: all), the system columns unless told not to, and the
        reason a row violates the contract (NULL: it does not)."""
        names = self._batch_names(batch_schema, origin)
        selects: list[str] = []
        reasons: list[str] = []
        cursor_expr: str | None = None
        for f in self.fields if fields is None else fields:
            raw_name = f.name if f.name in batch_schema.names else names.get(f.name.lower())
            duck = f.type.duckdb
            if raw_name is None:
                cast = f"CAST(NULL AS {duck if duck != 'JSON' else 'VARCHAR'})"
                raw = "NULL"
            else:
                raw = quote_ident(raw_name)
                spec = cast_sql(raw, batch_schema.field(raw_name).type, f.type)
                cast = spec.value
                if cast != raw:
                    reasons.append(self._violation(f, raw, cast, spec.changed))
            if f.required or f.name in self.primary_key:  # a key is required, declared so or not
                reasons.append(f"CASE WHEN {raw} IS NULL THEN {quote_literal(f.name + ': required value missing')} END")
            selects.append(f"{protected_sql(cast, f.protect)} AS {quote_ident(f.name)}")
            if self.cursor and f.name == self.cursor.field:
                cursor_expr = cast
        if system:
            selects.append(f"TIMESTAMPTZ {quote_literal(self.ingest_ts.isoformat())} AS _dativo_ingest_ts")
            selects.append(f"{quote_literal(self.run_id)} AS _dativo_run_id")
            if self.add_ingest_date:
                selects.append(f"DATE {quote_literal(self.ingest_ts.date().isoformat())} AS {INGEST_DATE}")
        reason = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "CAST(NULL AS VARCHAR)"
        selects.append(f"{reason} AS _dativo_reason")
        sql = f"SELECT {', '.join(selects)} FROM batch"
        if filter_cursor and cursor_expr is not None and self.cursor and self.cursor.after is not None:
            f = self._by_name[self.cursor.field]
            threshold = f"TRY_CAST({quote_literal(self.cursor.after)} AS {f.type.duckdb})"
            if self.cursor.lookback_seconds and f.type.duckdb in ("TIMESTAMP", "TIMESTAMPTZ", "DATE"):
                threshold = f"({threshold} - INTERVAL {int(self.cursor.lookback_seconds)} SECOND)"
            sql += f" WHERE NOT COALESCE({cursor_expr} <= {threshold}, false)"
        return sql

    @staticmethod
    def _violation(f: StageField, raw: str, cast: str, changed: str | None) -> str:
        """SQL giving the reason a raw value violates its field's type (NULL when it does not)."""
        if f.sensitive:  # never copy a classified value into a message
            bad = quote_literal(f"{f.name}: value is not a {f.type.name}")
            inexact = quote_literal(f"{f.name}: value does not fit {f.type.name} exactly")
        else:
            quoted = f"chr(39) || left(CAST({raw} AS VARCHAR), 40) || chr(39)"
            bad = f"{quote_literal(f.name + ': value ')} || {quoted} || {quote_literal(' is not a ' + f.type.name)}"
            inexact = (f"{quote_literal(f.name + ': value ')} || {quoted} || "
                       f"{quote_literal(' does not fit ' + f.type.name + ' exactly')}")
        when_changed = f" WHEN {changed} THEN {inexact}" if changed else ""
        return f"CASE WHEN {raw} IS NOT NULL AND {cast} IS NULL THEN {bad}{when_changed} END"

    # -- input -----------------------------------------------------------------------------------
    def add(self, message: Batch) -> list[pa.Table]:
        """Cast and validate one batch; return clean chunks that are ready to be written."""
        data = message.data
        n = data.num_rows
        if n == 0:
            return []
        origin = message.origin or message.stream
        offset = self._origin_rows.get(origin, 0)
        self._origin_rows[origin] = offset + n
        self.stats.rows_in += n
        clean = self._exact(data, origin, filter_cursor=not message.cursor_applied)
        if clean is None:
            clean = self._cast(data, origin, offset, filter_cursor=not message.cursor_applied)
        self.stats.rows_clean += clean.num_rows
        if not message.cursor_applied:  # else the source reports its position in its own order
            self._track_cursor(clean)
        if self.keyed is not None:
            self.keyed.add(clean)
            return []
        self._buffer.append(clean)
        self._buffer_rows += clean.num_rows
        if self._buffer_rows >= self.chunk_rows:
            return [self._take_buffer()]
        return []

    def _cast(self, data: pa.RecordBatch, origin: str, offset: int, *, filter_cursor: bool) -> pa.Table:
        """The DuckDB path: cast and check every row; violations go to quarantine, the clean rows come back."""
        batch = data  # noqa: F841 - referenced by name in the SQL below
        out = self.con.sql(self._cast_sql(data.schema, origin, filter_cursor=filter_cursor)).to_arrow_table()
        self.stats.rows_skipped_by_cursor += data.num_rows - out.num_rows
        reason = out.column("_dativo_reason")
        bad_count = out.num_rows - reason.null_count
        if bad_count:
            ok_mask = pc.is_null(reason)
            self._quarantine_rows(data, out, ok_mask, origin, offset)
            out = out.filter(ok_mask)
        clean = out.drop_columns(["_dativo_reason"])
        if clean.schema != self.output_schema:
            clean = clean.cast(self.output_schema)
        return clean

    def _exact(self, data: pa.RecordBatch, origin: str, *, filter_cursor: bool) -> pa.Table | None:
        """The Arrow path (``stage.exact``): every column that already holds its field's type is taken as it is;
        only the others (text to convert, JSON to check, a value to mask…) go through DuckDB. None when that saves
        nothing, or a row may violate the contract, or rows are filtered: then the whole batch takes the DuckDB
        path, which names each violation."""
        if filter_cursor and self.cursor is not None and self.cursor.after is not None:
            return None
        names = self._batch_names(data.schema, origin)
        columns: list[pa.ChunkedArray | None] = []
        rest: list[StageField] = []
        raw_names: list[str] = []
        for f in self.fields:
            raw = f.name if f.name in data.schema.names else names.get(f.name.lower())
            column = None
            if raw is not None and not f.protect:
                array = data.column(raw)
                if (f.required or f.name in self.primary_key) and array.null_count:
                    return None
                column = exact_column(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array,
                                      f.type.duckdb, f.type.arrow)
            if column is None:
                rest.append(f)
                if raw is not None and raw not in raw_names:
                    raw_names.append(raw)
            columns.append(None if column is None else pa.chunked_array([column]))
        if len(rest) == len(self.fields) or (rest and not raw_names):
            return None
        if rest:
            batch = data.select(raw_names)
            # no row is filtered here (a batch the cursor filters takes the DuckDB path whole): every column keeps
            # the batch's rows
            out = self.con.sql(self._cast_sql(batch.schema, origin, fields=rest, system=False, filter_cursor=False)
                               ).to_arrow_table()
            if out.column("_dativo_reason").null_count != out.num_rows:
                return None
            columns = [out.column(f.name) if c is None else c for f, c in zip(self.fields, columns, strict=True)]
        n = data.num_rows
        system = [pa.repeat(pa.scalar(self.ingest_ts, pa.timestamp("us", tz="UTC")), n),
                  pa.repeat(pa.scalar(self.run_id, pa.string()), n)]
        if self.add_ingest_date:
            system.append(pa.repeat(pa.scalar(self.ingest_ts.date(), pa.date32()), n))
        table = pa.Table.from_arrays([*columns, *(pa.chunked_array([a]) for a in system)],
                                     names=self.output_schema.names)
        return table if table.schema == self.output_schema else table.cast(self.output_schema)

    @staticmethod
    def _batch_names(batch_schema: pa.Schema, origin: str) -> dict[str, str]:
        """The batch's columns by their lower-case name (fields are matched ignoring case); two that differ only
        in case are an error."""
        names: dict[str, str] = {}
        for n in batch_schema.names:
            if n.lower() in names:
                raise SourceError(f"{origin}: two columns of the source are named '{names[n.lower()]}' and "
                                  f"'{n}' (fields are matched to columns ignoring case) — rename one of them")
            names[n.lower()] = n
        return names

    def reject(self, rejected: Rejected) -> None:
        """A record the source could not parse: it goes to quarantine with its raw text."""
        self.stats.rows_in += 1
        self.stats.rows_quarantined += 1
        where = f"{rejected.origin}:{rejected.line}" if rejected.line else rejected.origin
        self._example(f"{where}: {rejected.reason}")
        row = {name: pa.array([None], pa.string()) for name in self._quarantine_names()}
        row["_dativo_reason"] = pa.array([rejected.reason], pa.string())
        row["_dativo_origin"] = pa.array([rejected.origin], pa.string())
        row["_dativo_row"] = pa.array([rejected.line], pa.int64())
        # a record that could not be parsed cannot be split into fields: with protected fields, keep none of it
        withheld = any(f.protect for f in self.fields)
        row["_dativo_raw"] = pa.array([None if withheld else rejected.raw], pa.string())
        self._quarantine.append(self._finish_quarantine(pa.table(row)))

    # -- output ----------------------------------------------------------------------------------
    @property
    def pending_rows(self) -> int:
        """Clean rows held here (buffered, or in its own dedup store) that the sink has not seen yet; rows of a
        shared store are counted once by its owner (``KeyedRows.pending_rows``)."""
        return self._buffer_rows + (self.keyed.pending_rows if self._owns_keyed and self.keyed else 0)

    def drain(self) -> Iterator[pa.Table]:
        """Everything clean since the last drain, deduplicated by primary key (last row wins)."""
        if self.keyed is None:
            if self._buffer:
                yield self._take_buffer()
            return
        for chunk, duplicates in self.keyed.drain():
            self.stats.rows_deduplicated += duplicates
            yield chunk

    def take_quarantine(self) -> pa.Table | None:
        if not self._quarantine:
            return None
        table = pa.concat_tables(self._quarantine)
        self._quarantine = []
        return table

    def quarantine_schema(self) -> pa.Schema:
        """The Arrow schema of this stage's quarantined rows (``quarantine_schema``)."""
        return quarantine_schema(self.fields)

    def close(self) -> None:
        """Release DuckDB (and the dedup store, when it is this stage's own)."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._owns_keyed and self.keyed is not None:
            self.keyed.close()

    # -- helpers ---------------------------------------------------------------------------------
    def _quarantine_names(self) -> list[str]:
        return _quarantine_names(self.fields)

    def _finish_quarantine(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        table = table.append_column("_dativo_ingest_ts", pa.array([self.ingest_ts] * n, pa.timestamp("us", tz="UTC")))
        table = table.append_column("_dativo_run_id", pa.array([self.run_id] * n, pa.string()))
        return table.select(self.quarantine_schema().names).cast(self.quarantine_schema())

    def _quarantine_rows(self, data: pa.RecordBatch, out: pa.Table, ok_mask: pa.ChunkedArray,
                         origin: str, offset: int) -> None:
        bad_mask = pc.invert(ok_mask)
        # the cursor filter may have dropped rows: violations are looked up in the cast output,
        # raw values are taken from the source rows at the same positions only when nothing was dropped
        bad = out.filter(bad_mask)
        positions = pc.indices_nonzero(bad_mask.combine_chunks()) if isinstance(bad_mask, pa.ChunkedArray) \
            else pc.indices_nonzero(bad_mask)
        same_rows = out.num_rows == data.num_rows
        raw_source = pa.Table.from_batches([data]).take(positions) if same_rows else None
        columns: dict[str, pa.Array] = {}
        lower = {n.lower(): n for n in data.schema.names}
        for name in self._quarantine_names():
            src = name if name in data.schema.names else lower.get(name.lower())
            if raw_source is not None and src is not None:
                columns[name] = self._protect_raw(name, quarantine_text(raw_source.column(src)))
            else:
                columns[name] = quarantine_text(bad.column(name))  # already protected by the cast SQL
        rows = pc.add(positions, offset + 1)
        columns["_dativo_reason"] = bad.column("_dativo_reason")
        columns["_dativo_origin"] = pa.array([origin] * bad.num_rows, pa.string())
        columns["_dativo_row"] = rows
        columns["_dativo_raw"] = pa.nulls(bad.num_rows, pa.string())
        table = pa.table(columns)
        self.stats.rows_quarantined += table.num_rows
        for reason, row in zip(table.column("_dativo_reason").to_pylist()[:MAX_EXAMPLES],
                               rows.to_pylist()[:MAX_EXAMPLES], strict=False):
            self._example(f"{origin} row {row}: {reason}")
        self._quarantine.append(self._finish_quarantine(table))

    def _protect_raw(self, name: str, raw: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
        """A quarantined raw value as the policy stores its field (the same mask or hash as clean rows)."""
        how = self._by_name[name].protect if name in self._by_name else None
        if how is None:
            return raw
        raw_values = pa.table({"v": raw})  # noqa: F841 - referenced by name in the SQL below
        return self.con.sql(f"SELECT {protected_sql('v', how)} AS v FROM raw_values").to_arrow_table().column("v")

    def _example(self, text: str) -> None:
        if len(self.stats.examples) < MAX_EXAMPLES:
            self.stats.examples.append(text)

    def _take_buffer(self) -> pa.Table:
        table = pa.concat_tables(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffer_rows = [], 0
        return table

    def _track_cursor(self, clean: pa.Table) -> None:
        if not self.cursor or clean.num_rows == 0:
            return
        value = pc.max(clean.column(self.cursor.field)).as_py()
        if value is not None and (self.max_cursor is None or value > self.max_cursor):
            self.max_cursor = value


def asset_fields(asset: AssetDefinition, protect: dict[str, str] | None = None) -> list[StageField]:
    """The asset's fields as the stage casts and validates them (``protect``: field → ``mask`` / ``hash``)."""
    protect = protect or {}
    return [StageField(f.name, parse_type(f.type), bool(f.required), str(f.classification or "").upper() in SENSITIVE,
                       protect.get(f.name) if protect.get(f.name) in ("mask", "hash") else None)
            for f in asset.fields]


def _quarantine_names(fields: Sequence[StageField]) -> list[str]:
    return [f.name for f in fields if f.name not in QUARANTINE_COLUMNS]


def quarantine_text(values: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column of quarantined rows as text: bytes as ``\\x`` + hex (they need not be UTF-8), others cast. Only
    violating rows come here, so the per-value pass over bytes is off the hot path."""
    kind = values.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return pa.array([None if v is None else "\\x" + v.hex() for v in values.to_pylist()], pa.string())
    return pc.cast(values, pa.string())


def quarantine_schema(fields: Sequence[StageField]) -> pa.Schema:
    """The quarantine table's columns: every asset field as the raw text it arrived as, then why and where."""
    out = [pa.field(n, pa.string()) for n in _quarantine_names(fields)]
    out += [pa.field("_dativo_reason", pa.string()), pa.field("_dativo_origin", pa.string()),
            pa.field("_dativo_row", pa.int64()), pa.field("_dativo_raw", pa.string()),
            pa.field("_dativo_ingest_ts", pa.timestamp("us", tz="UTC")), pa.field("_dativo_run_id", pa.string())]
    return pa.schema(out)


def output_schema(fields: Sequence[StageField], *, add_ingest_date: bool) -> pa.Schema:
    """The Arrow schema of staged rows: the asset's fields, typed, then the system columns."""
    out = [pa.field(f.name, f.type.arrow) for f in fields]
    out += [pa.field("_dativo_ingest_ts", pa.timestamp("us", tz="UTC")), pa.field("_dativo_run_id", pa.string())]
    if add_ingest_date and INGEST_DATE not in {f.name for f in fields}:
        out.append(pa.field(INGEST_DATE, pa.date32()))
    return pa.schema(out)
