"""Run a message generator ahead of its consumer, in one thread, so that parsing overlaps staging.

Used by the Airbyte and Singer engines: a connector's stdout is parsed by Arrow and the batches are cast by
DuckDB; both release the GIL, so on two cores the next batch is read while the runner stages and writes the
previous one. Messages come out in the order the generator made them, and an exception it raises comes out
after the messages before it — the same sequence as when iterated directly, so "rows before a STATE are
committed with it" still holds. At most ``depth`` messages wait in between.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


def run_ahead(source: Iterator[T], *, depth: int = 2, stop: Callable[[], None] | None = None,
              name: str = "run-ahead") -> Iterator[T]:
    """``source``'s items, produced in a thread up to ``depth`` ahead. When the consumer stops early,
    ``stop`` is called (e.g. kill the process the thread may be blocked reading) before the thread is joined."""
    handoff: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry: tuple[int, Any]) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put((_ITEM, item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((_ERROR, exc))
            return
        put((_END, None))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stopped.set()
        if thread.is_alive() and stop is not None:
            stop()
        thread.join(timeout=30)
        if not thread.is_alive() and hasattr(source, "close"):
            source.close()  # type: ignore[union-attr]
