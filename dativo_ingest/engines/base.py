"""The Engine contract, and the one registry of engines.

An engine realises a job's source: it reads what the plan names, starting where the committed state says, and
yields the normalised stream of ``dativo_ingest.stream`` — ``Batch`` (rows, already Arrow), ``Checkpoint`` (its
own state, in its own dialect: the runner commits rows and state together), ``Log`` / ``Trace`` — and nothing
else. Engines: ``native`` (our own extractors, ``engines/native``), ``airbyte`` (real Airbyte connectors,
``engines/airbyte``), ``singer`` (real Singer taps, ``engines/singer``; also called ``meltano``), ``spark``
(Spark tasks read, stage and write the data files: ``run.dispatch`` runs such a job through
``engines/spark/run.py``).

Each engine folder holds the whole engine: its wire format, records → Arrow, state dialect, plugin manifest and
conformance report (``test-connector``); what two engines share lives in ``engines/common``. The engine modules do
not import this one (it imports them, when asked for an engine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dativo_ingest.config.engine_names import ALIASES, ENGINES
from dativo_ingest.stream import Message

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.engines.common.conformance import Report
    from dativo_ingest.engines.launchers.early import EarlyStart
    from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What every engine does (see the module docstring)."""

    #: the engine's name as jobs and state envelopes spell it
    name: str

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """Yield batches and checkpoints of the job's source, resuming from ``state`` (what the last commit
        stored, in any engine's dialect). Rows must come before the checkpoint that covers them; an exception
        with ``commit_checkpointed = True`` lets the runner commit what the last checkpoint covers first."""
        ...

    def preflight(self, plan: JobPlan) -> None:
        """Refuse up front what ``read`` would refuse, without reading data or installing anything (``check`` and
        every run call it in ``startup_sequence``): a ``DativoError`` naming the file, the field and the fix."""
        ...

    # optional: ``start_early(plan, guess) -> EarlyStart | None`` — start the connector with the state ``guess``
    # gives (the local mirror's) while the runner reads the committed one; see ``start_early`` below.


def start_early(engine: Engine, plan: JobPlan, guess: Callable[[], StateEnvelope]) -> EarlyStart | None:
    """The engine's connector started with the state ``guess()`` gives (called only for an engine that can start
    early: the local mirror's state), before the committed state is read
    (``engines.launchers.early``), or None: the engine cannot start early (it has no ``start_early``, or that would
    run another connector command first), or it failed to — then the run starts the connector as usual, after the
    committed state is read, and meets the same failure where it always did. A job whose connector does something
    at the source merely by starting sets ``engine.options.start_early: false``."""
    start = getattr(engine, "start_early", None)
    if start is None or plan.engine_options.get("start_early") is False:  # the job's opt-out
        return None
    try:
        early: EarlyStart | None = start(plan, guess())
    except Exception as exc:  # noqa: BLE001 - the usual start reports it, at its usual place
        log.debug("%s: not started early (%s: %s)", plan.job_name, type(exc).__name__, plan.secrets.redact(str(exc)))
        return None
    if early is not None:
        log.debug("%s: started early with the state of the local mirror (pid %d), before the committed state is read",
                  early.name, early.process.popen.pid)
    return early


def read_from(engine: Engine, plan: JobPlan, state: StateEnvelope, early: EarlyStart | None) -> Iterator[Message]:
    """The engine's messages from the committed ``state``: the early connector's when ``early`` is given (started
    again with ``state`` when it was started with another), else ``engine.read``."""
    if early is not None:
        return early.messages(state)
    return engine.read(plan, state)


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``NotImplementedError`` naming the available ones otherwise)."""
    name = ALIASES.get(name, name)
    if name == "native":
        from dativo_ingest.engines.native.engine import NativeEngine

        return NativeEngine()
    if name == "airbyte":
        from dativo_ingest.engines.airbyte.engine import AirbyteEngine

        return AirbyteEngine()
    if name == "singer":
        from dativo_ingest.engines.singer.engine import SingerEngine

        return SingerEngine()
    if name == "spark":
        from dativo_ingest.engines.spark.engine import SparkEngine

        return SparkEngine()
    raise NotImplementedError(f"engine '{name}' is not implemented (available: {', '.join(ENGINES)})")


def conformance_report(engine: str, connector: str, *, project_root: Path, config_path: Path | None = None,
                       streams: list[str] | None = None, options: dict[str, Any] | None = None) -> Report:
    """``test-connector``: run ``connector`` through the whole protocol of ``engine`` and report what does not
    conform (see ``engines/common/conformance.py``)."""
    name = ALIASES.get(engine, engine)
    if name == "airbyte":
        from dativo_ingest.engines.airbyte.conformance import airbyte_report

        return airbyte_report(connector, project_root=project_root, config_path=config_path, streams=streams,
                              options=options or {})
    if name == "singer":
        from dativo_ingest.engines.singer.conformance import singer_report

        return singer_report(connector, project_root=project_root, config_path=config_path, streams=streams,
                             options=options or {})
    if name == "native":  # a REST recipe (its api: section) against the API its connection names
        from dativo_ingest.engines.native.rest.conformance import rest_report

        return rest_report(connector, project_root=project_root, config_path=config_path, streams=streams)
    raise NotImplementedError(f"test-connector --engine {engine}: not implemented (available: airbyte, singer, "
                              f"native)")


__all__ = ["ALIASES", "ENGINES", "Engine", "conformance_report", "get_engine", "read_from", "start_early"]
