"""Engines turn a job plan into the normalised stream (``dativo_ingest.stream``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from dativo_ingest.stream import Message

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope


class Engine(Protocol):
    name: str

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """Yield batches and checkpoints; ``state`` is what the last commit stored."""
        ...


def get_engine(name: str) -> Engine:
    if name == "native":
        from dativo_ingest.engines.native.engine import NativeEngine

        return NativeEngine()
    if name == "airbyte":
        from dativo_ingest.engines.airbyte.engine import AirbyteEngine

        return AirbyteEngine()
    if name in ("singer", "meltano"):
        from dativo_ingest.engines.singer.engine import SingerEngine

        return SingerEngine()
    raise NotImplementedError(f"engine '{name}' is not implemented")
