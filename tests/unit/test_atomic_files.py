"""Atomic writes of the engines' caches and private files (``engines.common.files``), and the caches that use it:
two writers of one cache at once (two pool workers discovering the same connector) never fail or leave a part."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import orjson
import pytest

from dativo_ingest.engines.airbyte.engine import catalog_cache, discover_cached
from dativo_ingest.engines.airbyte.manifest import ConnectorEntry, save_control_config
from dativo_ingest.engines.airbyte.protocol import AirbyteStream
from dativo_ingest.engines.common.files import write_atomic


def _together(work, n: int = 8) -> list[BaseException]:
    """Run ``work(i)`` in ``n`` threads started at once; the exceptions they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_writers_of_one_file_at_once_leave_one_whole_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "cache" / "x.json"
    payloads = [bytes([65 + i]) * (256 << 10) for i in range(8)]

    def work(i: int) -> None:
        for _ in range(20):
            write_atomic(target, payloads[i])

    assert _together(work) == []
    assert target.read_bytes() in payloads
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_modes_and_a_failed_write_keeps_the_old_file(tmp_path: Path):
    shared, private = write_atomic(tmp_path / "a", b"1"), write_atomic(tmp_path / "b", b"2", private=True)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644 and stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        write_atomic(shared, "not bytes")  # type: ignore[arg-type]
    assert shared.read_bytes() == b"1" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


class _Connector:
    def __init__(self) -> None:
        self.calls = 0

    def discover(self, config: dict) -> list[AirbyteStream]:
        self.calls += 1
        return [AirbyteStream.from_dict({"name": f"s{i}", "json_schema": {"type": "object", "properties": {
            f"c{j}": {"type": "string"} for j in range(200)}}}) for i in range(20)]


def test_pool_workers_discovering_one_connector_at_once_share_one_catalog_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DATIVO_HOME", str(tmp_path / "home"))
    entry = ConnectorEntry(name="faker", package="airbyte-source-faker", version="7.2.1")
    connector = _Connector()

    def work(i: int) -> None:
        for _ in range(10):
            discover_cached(connector, entry, {"count": 1}, ["s0"], refresh=True)  # type: ignore[arg-type]

    assert _together(work) == []
    cache = catalog_cache(entry, {"count": 1})
    assert [s["name"] for s in orjson.loads(cache.read_bytes())] == [f"s{i}" for i in range(20)]
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]
    assert discover_cached(connector, entry, {"count": 1}, ["s0"])[0].name == "s0" and connector.calls == 80


def test_a_kept_connector_config_is_private(tmp_path: Path):
    path = tmp_path / "control" / "job.json"
    save_control_config(path, {"token": "a"}, {"token": "b"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and orjson.loads(path.read_bytes())["config"] == {"token": "b"}
