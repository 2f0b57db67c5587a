"""The dedup store of a keyed table: Arrow when no key repeats, DuckDB (spilling) otherwise; last row wins."""

from __future__ import annotations

import pyarrow as pa

from dativo_ingest.stage.keyed import KeyedRows

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("k", pa.string()), pa.field("v", pa.int64())])
DUCK = [("id", "BIGINT"), ("k", "VARCHAR"), ("v", "BIGINT")]


def _rows(ids: list[int], v: int, k: str = "a") -> pa.Table:
    return pa.table({"id": ids, "k": [k] * len(ids), "v": [v] * len(ids)}, schema=SCHEMA)


def _in_duckdb(store: KeyedRows) -> int:
    return int(store.con.execute("SELECT count(*) FROM staged").fetchall()[0][0])


def _drain(store: KeyedRows) -> tuple[list[tuple[int, str, int]], int]:
    rows, dropped = [], 0
    for chunk, duplicates in store.drain():
        rows += [(r["id"], r["k"], r["v"]) for r in chunk.to_pylist()]
        dropped += duplicates
    return sorted(rows), dropped


def test_unique_keys_never_go_through_duckdb() -> None:
    store = KeyedRows(SCHEMA, DUCK, ["id", "k"], chunk_rows=3)
    store.add(_rows([1, 2], 1))
    store.add(_rows([1, 2], 1, k="b"))  # same id, other k: a different composite key
    assert _in_duckdb(store) == 0 and store.pending_rows == 4
    chunks = list(store.drain())
    assert [c.num_rows for c, _ in chunks] == [3, 1]  # chunk_rows respected
    assert store.pending_rows == 0 and _in_duckdb(store) == 0
    store.close()


def test_a_repeated_key_is_deduplicated_last_row_wins() -> None:
    store = KeyedRows(SCHEMA, DUCK, ["id"])
    store.add(_rows([1, 2], 1))
    store.add(_rows([2, 3], 2))
    rows, dropped = _drain(store)
    assert rows == [(1, "a", 1), (2, "a", 2), (3, "a", 2)] and dropped == 1
    store.add(_rows([5], 9))  # the next commit starts on the Arrow path again
    assert _in_duckdb(store) == 0 and _drain(store) == ([(5, "a", 9)], 0)
    store.close()


def test_past_the_hold_limit_rows_spill_to_a_file_and_still_dedup_in_order() -> None:
    first = _rows(list(range(100)), 1)
    store = KeyedRows(SCHEMA, DUCK, ["id"], hold_bytes=first.nbytes)  # the first table fits, the second not
    store.add(first)
    store.add(_rows([7], 2))
    assert _in_duckdb(store) == 0 and store.pending_rows == 101
    rows, dropped = _drain(store)
    assert len(rows) == 100 and dict((r[0], r[2]) for r in rows)[7] == 2 and dropped == 1
    store.close()


def test_spilled_rows_with_unique_keys_come_back_as_they_went_in(tmp_path) -> None:
    store = KeyedRows(SCHEMA, DUCK, ["id"], hold_bytes=1, chunk_rows=4, spill_dir=str(tmp_path))
    for start in range(0, 10, 3):
        store.add(_rows(list(range(start, min(start + 3, 10))), start))
    assert list(tmp_path.iterdir()) and _in_duckdb(store) == 0
    chunks = list(store.drain())
    assert [c.num_rows for c, _ in chunks] == [4, 4, 2] and all(d == 0 for _, d in chunks)
    assert [r["id"] for c, _ in chunks for r in c.to_pylist()] == list(range(10))
    assert not list(tmp_path.iterdir())  # the spill file is gone after the drain
    store.close()
