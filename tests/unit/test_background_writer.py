"""The run's write stage on its own thread: order kept, bounded, and an error never passed over."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from dativo_ingest.run.writer import BackgroundWriter


def _chunk(i: int) -> pa.Table:
    return pa.table({"i": [i]})


def test_chunks_are_written_in_order_and_flush_waits_for_them() -> None:
    written: list[int] = []
    writer = BackgroundWriter(lambda t: written.append(t.column("i")[0].as_py()), depth=2)
    for i in range(50):
        writer.put(_chunk(i))
    writer.flush()
    assert written == list(range(50))
    writer.close()


def test_the_queue_is_bounded_so_a_slow_store_holds_the_reader_back() -> None:
    gate = threading.Event()
    writer = BackgroundWriter(lambda t: gate.wait(10), depth=1)
    writer.put(_chunk(0))  # being written (blocked)
    writer.put(_chunk(1))  # waiting: the queue is full now
    blocked = threading.Thread(target=writer.put, args=(_chunk(2),), daemon=True)
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # the third put waits for room
    gate.set()
    blocked.join(10)
    writer.flush()
    writer.close()


def test_an_error_is_raised_by_every_later_put_and_flush() -> None:
    written: list[int] = []
    handed_over = threading.Event()  # the writer fails only once every chunk is queued (else a put raises first)

    def write(t: pa.Table) -> None:
        handed_over.wait(10)
        if t.column("i")[0].as_py() == 1:
            raise OSError("disk full")
        written.append(t.column("i")[0].as_py())

    writer = BackgroundWriter(write, depth=4)
    for i in range(4):
        writer.put(_chunk(i))
    handed_over.set()
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    with pytest.raises(OSError):  # a second flush must not pass over the chunks never written
        writer.flush()
    with pytest.raises(OSError):
        writer.put(_chunk(9))
    writer.close()
    assert written == [0]  # chunks after the error are skipped
