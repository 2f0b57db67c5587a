"""The one checkpoint buffer (``engines.common.checkpoints``): rows wait for the STATE that covers them."""

from __future__ import annotations

import pyarrow as pa

from dativo_ingest.engines.common.checkpoints import CheckpointBuffer
from dativo_ingest.stream import Batch


def _batch(stream: str, *ids: int) -> Batch:
    return Batch(stream, pa.record_batch({"id": pa.array(ids, pa.int64())}))


def _ids(batches) -> list[tuple[str, int]]:
    return [(b.stream, i) for b in batches for i in b.data.column("id").to_pylist()]


def test_rows_wait_for_the_state_of_their_stream_and_come_out_in_order():
    held = CheckpointBuffer()
    assert list(held.hold(_batch("a", 1, 2))) == [] and list(held.hold(_batch("b", 7))) == []
    assert list(held.hold(_batch("a", 3))) == []
    assert _ids(held.covered("a")) == [("a", 1), ("a", 2), ("a", 3)]
    assert list(held.covered("a")) == []  # nothing twice
    assert _ids(held.covered_all()) == [("b", 7)]
    assert not held.uncovered


def test_too_many_bytes_are_passed_on_uncovered_until_the_next_state():
    held = CheckpointBuffer(hold_bytes=1)
    assert _ids(held.hold(_batch("a", 1))) == [("a", 1)]  # memory stays bounded …
    assert held.uncovered  # … and a failure now must not commit: no STATE covers row 1
    assert list(held.covered("b")) == [] and held.uncovered  # another stream's STATE does not cover it
    assert list(held.covered("a")) == [] and not held.uncovered
    assert _ids(held.hold(_batch("b", 2))) == [("b", 2)] and held.uncovered
    assert list(held.covered_all()) == [] and not held.uncovered


def test_when_every_state_covers_every_stream_rows_before_the_first_state_pass_on_at_once():
    held = CheckpointBuffer(covers_all=True)
    assert _ids(held.hold(_batch("a", 1))) == [("a", 1)]  # staged while the connector reads on …
    assert held.uncovered  # … but a failure now commits nothing (there is no STATE to commit yet)
    assert list(held.covered_all()) == [] and not held.uncovered  # the first STATE covers it
    assert list(held.hold(_batch("a", 2))) == []  # from now on rows wait for the next STATE
    assert not held.uncovered and _ids(held.covered("a")) == [("a", 2)]
