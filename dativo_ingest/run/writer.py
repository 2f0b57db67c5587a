"""The write stage of a run's pipeline: the sink encodes and writes data files on a thread of its own while the
run reads and stages the next rows (pyarrow's Parquet writer and DuckDB release the GIL, so both cores work).

The queue is bounded (``depth`` chunks waiting), so a slow store holds the reader back instead of filling memory.
``flush`` waits until every chunk handed over is written and re-raises the writer's error; a commit flushes
first, so it never publishes a file that is still being written. ``close`` stops the thread; after an error
the chunks still queued are dropped (the run aborts and its files are deleted).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import pyarrow as pa

_STOP = object()


class BackgroundWriter:
    """Runs ``write(chunk)`` for each chunk ``put`` here, in order, on one worker thread."""

    def __init__(self, write: Callable[[pa.Table], None], *, depth: int = 1) -> None:
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="dativo-writer", daemon=True)
        self._thread.start()

    def put(self, chunk: pa.Table) -> None:
        """Hand a chunk over (blocks while ``depth`` chunks wait); raises the writer's error, if it had one."""
        self._raise()
        self._queue.put(chunk)

    def flush(self) -> None:
        """Wait until every chunk handed over is written; raise the writer's error, if it had one."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Stop the thread once the queue is worked off (chunks after an error are skipped)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:  # stays set: no later flush may pass over a chunk that was never written
            raise self._error

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:
                    self._write(item)  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - handed to the run's thread by flush / put
                self._error = exc
            finally:
                self._queue.task_done()


__all__ = ["BackgroundWriter"]
