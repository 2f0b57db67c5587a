"""The one checkpoint buffer: a stream's rows are held back until the connector's next STATE that covers them.

A connector (Airbyte, Singer) says how far it got only with STATE messages; rows it sent after its last STATE are
not covered by any state. The engines hold each stream's batches here until such a STATE arrives (then they are
passed on, followed by the checkpoint), so that when the connector fails — an error message, a non-zero exit, a
broken line — every row the runner has seen is covered and the runner may commit exactly the rows before the last
STATE (``uncovered`` is False). Memory stays bounded: once a stream holds ``hold_bytes`` of Arrow data, its rows are
passed on without a state ("uncovered"), and a later failure then commits nothing of the run.

Before the connector's first STATE there is nothing to commit on a failure, held or not. So when every STATE covers
every stream of the read (``covers_all``: a Singer STATE, any state of a one-stream Airbyte read), rows pass on at
once until the first STATE comes — uncovered, and covered by it — and the runner stages them while the connector
is still reading (a full-table tap sends its only STATE at the end).
"""

from __future__ import annotations

from collections.abc import Iterator

from dativo_ingest.stream import Batch

HOLD_BYTES = 64 << 20


class CheckpointBuffer:
    """Per stream: batches waiting for the STATE that covers them (see the module docstring)."""

    def __init__(self, hold_bytes: int = HOLD_BYTES, *, covers_all: bool = False) -> None:
        self.hold_bytes = hold_bytes
        self.covers_all = covers_all
        #: whether a STATE came (rows are held from then on)
        self._stated = False
        self._held: dict[str, list[Batch]] = {}
        self._bytes: dict[str, int] = {}
        #: streams with rows passed on since their last STATE
        self._dirty: set[str] = set()

    def hold(self, batch: Batch) -> Iterator[Batch]:
        """Keep ``batch`` until a STATE covers its stream; when the stream holds too much, pass its rows on now."""
        stream = batch.stream
        if self.covers_all and not self._stated:  # the first STATE will cover it; a failure before commits nothing
            self._dirty.add(stream)
            yield batch
            return
        self._held.setdefault(stream, []).append(batch)
        self._bytes[stream] = self._bytes.get(stream, 0) + batch.data.nbytes
        if self._bytes[stream] >= self.hold_bytes:
            self._dirty.add(stream)
            yield from self._release(stream)

    def covered(self, stream: str) -> Iterator[Batch]:
        """A STATE covers ``stream``: its held rows, to be passed on before that STATE's checkpoint."""
        yield from self._release(stream)
        self._dirty.discard(stream)
        self._stated = True

    def covered_all(self) -> Iterator[Batch]:
        """A STATE covers every stream (a Singer STATE, an Airbyte GLOBAL or LEGACY state, a clean end)."""
        for stream in list(self._held):
            yield from self.covered(stream)
        self._dirty.clear()
        self._stated = True

    @property
    def uncovered(self) -> bool:
        """Whether rows were passed on that no STATE covers yet (then a failure must not commit them)."""
        return bool(self._dirty)

    def _release(self, stream: str) -> Iterator[Batch]:
        held = self._held.pop(stream, [])
        self._bytes.pop(stream, None)
        yield from held


__all__ = ["HOLD_BYTES", "CheckpointBuffer"]
