"""Markdown-KV stored in an Iceberg table: ``target.markdown_kv_storage.mode: string | structured``.

The stage's clean rows are turned into Markdown-KV before the Iceberg sink writes them: ``string`` keeps one
row per record ``{doc_id, content}`` (``content`` is the record's document, readable by
``markdown_kv.decode``), ``structured`` one row per non-null field ``{doc_id, section, key, value}``
(``section``: the asset's name). The run's system columns follow. With a primary key the doc id is its values
joined by ``|`` and ``merge`` replaces whole documents (every row of a written doc id); without one it is the
record's ordinal in the run.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from dativo_ingest.errors import ConfigError
from dativo_ingest.formats import markdown_kv
from dativo_ingest.sinks.iceberg.sink import IcebergSink


def storage_mode(block: dict[str, Any] | None, job_path: Any = None) -> str | None:
    """``target.markdown_kv_storage.mode`` from that ``block`` (None when the job does not ask for Markdown-KV in
    Iceberg)."""
    if not block:
        return None
    mode = str((block if isinstance(block, dict) else {}).get("mode") or "").strip().lower()
    if mode not in markdown_kv.STORAGE_MODES:
        raise ConfigError(job_path, f"unknown Markdown-KV storage mode {mode or block!r}",
                          field="target.markdown_kv_storage.mode", fix="string or structured")
    return mode


class MarkdownKVIcebergSink(IcebergSink):
    """An Iceberg sink whose rows are the Markdown-KV form of the clean rows it is given."""

    def __init__(self, catalog: Any, identifier: str, schema: pa.Schema, *, mode: str,
                 data_columns: Sequence[str], section: str, primary_key: Sequence[str] = (), **kwargs: Any) -> None:
        self.mode = mode
        self.data_columns = list(data_columns)
        self.id_columns = list(primary_key)
        self.section = section
        self._rows_seen = 0
        super().__init__(catalog, identifier, markdown_kv.storage_schema(mode, schema, data_columns),
                         primary_key=["doc_id"] if primary_key else [], **kwargs)

    def write(self, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        stored = markdown_kv.to_storage(self.mode, data, self.data_columns, self.id_columns, section=self.section,
                                        start=self._rows_seen)
        self._rows_seen += data.num_rows
        super().write(stored.cast(self.schema))

    def current_keys(self) -> tuple[pa.Schema, Any]:
        raise NotImplementedError("detect_deletes with target.markdown_kv_storage: the table holds doc ids, not "
                                  "the asset's key columns (mapping them back is not implemented)")


def iceberg_sink_class(storage: dict[str, Any] | None, *, data_columns: Sequence[str], section: str,
                       job_path: Any = None) -> Any:
    """What builds the job's Iceberg sink: ``IcebergSink``, or this module's sink for the Markdown-KV storage
    mode of ``storage`` (``target.markdown_kv_storage``)."""
    mode = storage_mode(storage, job_path)
    if mode is None:
        return IcebergSink
    return functools.partial(MarkdownKVIcebergSink, mode=mode, data_columns=list(data_columns), section=section)
