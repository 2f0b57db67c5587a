"""run_ahead: the generator's items and its exception, in order, from a thread; early stop calls ``stop``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dativo_ingest.engines.common.read_ahead import run_ahead


def test_items_in_order_then_the_exception() -> None:
    def source() -> Iterator[int]:
        yield from range(100)
        raise ValueError("boom after 100")

    seen: list[int] = []
    with pytest.raises(ValueError, match="boom after 100"):
        for item in run_ahead(source(), depth=3):
            seen.append(item)
    assert seen == list(range(100))


def test_runs_in_another_thread_and_ends() -> None:
    threads: list[str] = []

    def source() -> Iterator[int]:
        for i in range(5):
            threads.append(threading.current_thread().name)
            yield i

    assert list(run_ahead(source(), name="ahead-test")) == [0, 1, 2, 3, 4]
    assert set(threads) == {"ahead-test"}


def test_early_stop_calls_stop_and_closes_the_source() -> None:
    release = threading.Event()
    closed: list[bool] = []

    def source() -> Iterator[int]:
        try:
            yield 1
            release.wait(10)  # a producer blocked (as on a pipe) until ``stop`` unblocks it
            yield 2
            yield 3
        finally:
            closed.append(True)

    gen = run_ahead(source(), depth=1, stop=release.set)
    assert next(gen) == 1
    gen.close()
    assert release.is_set()
    assert closed == [True]
