"""CSV, Parquet and JSON-lines files (local paths and globs) through Spark's readers.

The files are the ones the native engine would read (``resolve_files``: the same globs, the same access rules);
CSV is read as text, every column a string, so the stage casts it exactly as it casts the native engine's CSV.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dativo_ingest.engines.native.files.csv import CsvOptions, file_fingerprint, resolve_files
from dativo_ingest.engines.spark.options import FILE_FORMATS, SparkInputs
from dativo_ingest.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: a last column the CSV schema gets beyond the header's: Spark's parser drops the fields of a line beyond its
#: schema without a word, so this one catches the first of them and the task quarantines (or, strict, refuses)
#: the line, as the native reader does with a line of too many fields
EXTRA_FIELDS = "_dativo_extra_fields"


@dataclass(frozen=True)
class FileRead:
    """One stream's files as one DataFrame."""

    stream: str
    origin: str
    frame: DataFrame
    files: int
    #: CSV text that means "no value" (the stage gets nulls for them)
    null_values: tuple[str, ...] = ()
    #: the stream's file fingerprints once these rows are committed (the native engine's ``files`` state)
    files_state: dict[str, Any] | None = None


def file_format(inp: SparkInputs, path: str) -> str:
    """Spark's reader for a file: ``source.format``, else its extension (csv, parquet, json)."""
    name = inp.file_format or path.rsplit(".", 1)[-1].lower()
    if name not in FILE_FORMATS:
        raise ConfigError(inp.job_path, f"cannot tell the format of {path}", field="source.format",
                          fix=f"set source.format to one of {', '.join(sorted(FILE_FORMATS))}")
    return FILE_FORMATS[name]


def read_files(spark: SparkSession, inp: SparkInputs, state: dict[str, dict[str, Any]], *,
               skip_unchanged: bool = True) -> list[FileRead]:
    """Every stream's changed files (globs expanded now), one DataFrame per stream and format. ``state`` maps
    stream → its committed state; a file whose size and modification time are recorded there is skipped, as
    the native engine skips it (the same ``files`` state, so either engine continues the other's)."""
    assert inp.source is not None
    files = resolve_files(inp.source, project_root=inp.project_root, default_stream=inp.default_stream,
                          access=inp.file_access)
    seen: dict[str, dict[str, Any]] = {s: dict((st or {}).get("files") or {}) for s, st in state.items()}
    groups: dict[tuple[str, str], list[tuple[str, CsvOptions]]] = defaultdict(list)
    for f in files:
        files_state = seen.setdefault(f.stream, {})
        fingerprint = file_fingerprint(f.path)
        if skip_unchanged and files_state.get(f.key) == fingerprint:
            continue
        files_state[f.key] = fingerprint
        if f.path.stat().st_size == 0:
            continue
        groups[(f.stream, file_format(inp, str(f.path)))].append((str(f.path), f.options))
    out = []
    for (stream, fmt), entries in groups.items():
        paths = [p for p, _ in entries]
        options = entries[0][1]
        if fmt == "csv":
            from pyspark.sql.types import StringType, StructField, StructType

            reader = (spark.read.option("header", str(options.header).lower()).option("sep", options.delimiter)
                      .option("quote", options.quote_char or "\u0000").option("encoding", options.encoding)
                      .option("inferSchema", "false").option("mode", "PERMISSIVE"))
            header = reader.csv(paths).schema  # the header's names, every column text (reads one line)
            frame = reader.schema(StructType([*header.fields, StructField(EXTRA_FIELDS, StringType())])).csv(paths)
            nulls = tuple(options.null_values)
        elif fmt == "parquet":
            frame, nulls = spark.read.parquet(*paths), ()
        else:
            frame, nulls = spark.read.option("primitivesAsString", "true").json(paths), ()
        origin = paths[0] if len(paths) == 1 else f"{len(paths)} {fmt} files of stream {stream}"
        out.append(FileRead(stream, origin, frame, len(paths), nulls, seen[stream]))
    return out


__all__ = ["FileRead", "file_format", "read_files"]
