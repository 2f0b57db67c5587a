"""Airbyte RECORD messages → Arrow batches, held per stream until the connector's next STATE of that stream.

The typing is the one JSON Schema → Arrow mapping of every engine (``engines.common.schema``); what is Airbyte's
own is where the record sits in its message (``record.data``) and the error a line that is not a RECORD raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from dativo_ingest.engines.airbyte.protocol import ProtocolError, check_record
from dativo_ingest.engines.common.checkpoints import HOLD_BYTES, CheckpointBuffer
from dativo_ingest.engines.common.records import BATCH_BYTES, BATCH_ROWS, PendingLines, StreamColumns
from dativo_ingest.stream import Batch

RECORD_PATH = ("record", "data")


def record_data(line: bytes, number: int | None = None) -> dict[str, Any]:
    """The ``data`` of one RECORD line, or ``ProtocolError``."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"a RECORD line is not valid JSON: {line[:120]!r}") from None
    return check_record(message)[1]


def record_columns(json_schema: dict[str, Any], names: Sequence[str] | None = None) -> StreamColumns:
    """The columns of a stream's RECORDs (``names``: the asset's fields; None: every property of the schema)."""
    return StreamColumns(json_schema, names, path=RECORD_PATH, record_of=record_data)


class RecordBuffers:
    """Per stream: RECORD lines gathered into Arrow batches (``batch_rows`` / ``batch_bytes``), then held in the
    checkpoint buffer until the stream's next STATE (``hold_bytes``, see ``engines.common.checkpoints``).

    ``observe``: called with each stream's runs of RECORD lines as they come (``test-connector``)."""

    def __init__(self, columns: dict[str, StreamColumns], *, batch_rows: int = BATCH_ROWS,
                 batch_bytes: int = BATCH_BYTES, hold_bytes: int = HOLD_BYTES,
                 observe: Callable[[str, bytes], None] | None = None) -> None:
        self.columns = columns
        self.pending = {s: PendingLines(c, batch_rows=batch_rows, batch_bytes=batch_bytes,
                                        observe=_bound(observe, s)) for s, c in columns.items()}
        #: a STATE of the only stream covers the whole read
        self.held = CheckpointBuffer(hold_bytes, covers_all=len(columns) == 1)

    def add(self, stream: str, lines: bytes, count: int) -> Iterator[Batch]:
        """``count`` RECORD lines of ``stream``, raw: they are parsed with the rest of their batch, by Arrow."""
        if self.pending[stream].add(lines, count):
            yield from self._seal(stream)

    def _seal(self, stream: str) -> Iterator[Batch]:
        for batch in self.pending[stream].seal():
            yield from self.held.hold(Batch(stream, batch))

    def flush(self, stream: str) -> Iterator[Batch]:
        """Everything of ``stream`` so far: a STATE of it covers them."""
        yield from self._seal(stream)
        yield from self.held.covered(stream)

    def flush_all(self) -> Iterator[Batch]:
        """Everything so far: a GLOBAL or LEGACY state (or the end of the read) covers them."""
        for stream in self.columns:
            yield from self._seal(stream)
        yield from self.held.covered_all()

    @property
    def dirty(self) -> bool:
        """Rows were passed on that no STATE covers (see ``CheckpointBuffer.uncovered``)."""
        return self.held.uncovered


def _bound(observe: Callable[[str, bytes], None] | None, stream: str) -> Callable[[bytes], None] | None:
    if observe is None:
        return None
    return lambda chunk: observe(stream, chunk)


__all__ = ["RECORD_PATH", "RecordBuffers", "record_columns", "record_data"]
