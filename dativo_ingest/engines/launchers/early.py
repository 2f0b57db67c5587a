"""A connector started before the committed state is known: the one mechanism of the Airbyte and Singer engines.

Starting a connector (a venv's Python importing its SDK) takes about as long as opening the catalog and reading the
state committed with the data, so the runner overlaps the two: the engine starts the connector with the state of
the local mirror (a guess), and before a single message is read the runner hands over the committed state (the
only truth). Equal, as the connector is given it: the process goes on. Different (a stale or missing mirror,
another run's commit, ``state reset``): it is killed, its pipes closed, and the connector started again with the
committed state — what a run does without the early start. Nothing the early process wrote is read before that.

An engine starts early only when that needs no other connector command (spec and catalog cached, the launcher
not Docker); otherwise ``NeedsConnector`` (or ``None``) says so and the run starts the connector as it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from dativo_ingest.engines.launchers.base import ConnectorProcess

if TYPE_CHECKING:
    from dativo_ingest.state.envelope import StateEnvelope
    from dativo_ingest.stream import Message

log = logging.getLogger(__name__)


class NeedsConnector(Exception):  # noqa: N818 - a reason not to start early, not an error of the run
    """Preparing the early start would run a connector command (``spec``, ``discover``, ``--about``) or install:
    the run starts the connector the usual way instead."""


def same_state(a: Any, b: Any) -> bool:
    """Whether two connector states are the same document (the same JSON, keys in any order)."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


class EarlyStart:
    """A connector process started with a guessed state, waiting for the committed one.

    ``translate(envelope)``: the state the connector is given for an envelope (as its ``--state`` file holds it);
    ``start(state)``: start the connector with such a state; ``consume(envelope, process)``: the run's messages
    from a started process; ``cleanup()``: remove what the engine made for it (work folder, config files).
    ``messages(committed)`` reads; ``close()`` stops and removes everything when it is not read (or not any more).
    """

    def __init__(self, name: str, process: ConnectorProcess, given: Any, *,
                 translate: Callable[[StateEnvelope], Any], start: Callable[[Any], ConnectorProcess],
                 consume: Callable[[StateEnvelope, ConnectorProcess], Iterator[Message]],
                 cleanup: Callable[[], None]) -> None:
        self.name = name
        self.process = process
        #: the state the process was started with
        self.given = given
        self._translate = translate
        self._start = start
        self._consume = consume
        self._cleanup = cleanup
        #: whether ``messages`` has begun (then its own ``finally`` cleans up)
        self.reading = False
        #: whether the early process was started again with the committed state (the guess was wrong)
        self.restarted = False
        self.closed = False

    def matches(self, committed: StateEnvelope) -> bool:
        """Whether the connector was started with the state ``committed`` gives it."""
        return same_state(self._translate(committed), self.given)

    def messages(self, committed: StateEnvelope) -> Iterator[Message]:
        """The run's messages, from the early process when it was given ``committed``'s state, else from a process
        started again with it (the early one killed first, unread)."""
        self.reading = True
        try:
            wanted = self._translate(committed)
            if same_state(wanted, self.given):
                log.debug("%s: started early with the local mirror's state, which is the committed one: reading it",
                          self.name)
            else:
                log.debug("%s: started early with a state other than the committed one (the local mirror is stale "
                          "or missing): stopped unread, starting it again with the committed state", self.name)
                self.process.close()
                self.restarted = True
                self.process = self._start(wanted)
                self.given = wanted
            yield from self._consume(committed, self.process)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the process (and its process group), reap it, close its pipes, remove its files (once)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.process.close()
        finally:
            self._cleanup()


__all__ = ["EarlyStart", "NeedsConnector", "same_state"]
