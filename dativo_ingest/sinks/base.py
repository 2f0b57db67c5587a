"""The Sink contract: where a job run's clean rows go, committed together with the state that produced them.

A run gets its sinks from ``open_sink`` (``sinks/factory.py``): one for its table or dataset, and one for the
sibling quarantine table when rows fail validation. The lifecycle is always the same:

``current_state()`` — the state committed with the data the run starts from (this also pins that commit: its
*base*) → ``write(rows)`` / ``delete_keys(keys)`` as the stream goes (data files are written, nothing is
visible) → ``commit(state)`` (the files and the state become visible together, in one step) → more writes and
commits, or ``abort()`` (the files written since the last commit are deleted).

Every sink commits through one loop (``Sink.commit``): when another writer committed after the base, the commit
is re-applied on the new head only for a merge by primary key, with no deletes of its own, whose state covers the
other writer's (``StateEnvelope.uncovered``); otherwise it fails with one line, having published nothing. What
differs between sinks is how a head is read and how one commit attempt is published (``_head``, ``_publish``).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from dativo_ingest.errors import DativoError
from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)

#: how many times one commit is attempted against a head that other writers keep moving
COMMIT_ATTEMPTS = 6
#: what a commit without a state (a quarantine table's) records as its state
NO_STATE = "{}"
#: a ``commit_once`` commit records its tag here: the same tag never lands twice
TAG_PROPERTY = "dativo.tag"


class ConcurrentCommitError(DativoError):
    """Another writer committed to the target first and this commit cannot safely be re-applied on top."""


class CommitConflict(Exception):  # noqa: N818 - a signal inside the commit loop, never shown to a user
    """One commit attempt did not land because the target moved under it: try again on the new head."""


class CommitOutcomeUnknown(Exception):  # noqa: N818 - turned into a DativoError by ``Sink.commit``
    """A commit attempt failed and the target could not be read back to tell whether it landed."""


@dataclass(frozen=True)
class CommitResult:
    """What one commit published."""

    #: the Iceberg snapshot id, or the run manifest's sequence number, of this commit
    snapshot_id: int | None
    rows: int
    files: int


@dataclass(frozen=True)
class Head:
    """One committed version of a target: the one a run starts from, or the newest."""

    #: the Iceberg snapshot id or the run manifest's sequence; None: nothing was ever committed
    version: int | None
    #: the state JSON committed with it
    state: str | None
    #: the sink's own handle on it (a pyiceberg snapshot, a run manifest)
    handle: Any = None
    #: what tells two commits of the same version apart (a run manifest's name), if anything can
    tag: str | None = None

    def same_as(self, other: Head) -> bool:
        """Whether both are the same commit."""
        return self.version == other.version and self.tag == other.tag


@dataclass
class Pending:
    """What a sink wrote since its last commit: data files, rows, and primary keys to replace or delete."""

    files: list[Any] = field(default_factory=list)
    rows: int = 0
    #: key columns of every row written (merge) or to delete: the next commit removes their older versions
    keys: list[pa.Table] = field(default_factory=list)
    deletes: int = 0

    def key_table(self) -> pa.Table | None:
        """All the pending keys in one table (None when there are none)."""
        return pa.concat_tables(self.keys) if self.keys else None


@dataclass(frozen=True)
class CommitRequest:
    """One commit, as the loop hands it to each attempt."""

    pending: Pending
    #: the state envelope's JSON (``NO_STATE`` for a sink without state)
    state: str
    properties: dict[str, str]
    #: unique per commit: tells whether a commit whose outcome is unknown landed
    commit_id: str
    #: a state-only commit (``reset_state``): no data change, and it may go on top of any head
    reset: bool = False


class Sink(ABC):
    """One table or dataset that a job run writes: rows and state become visible together, or not at all."""

    def __init__(self, identifier: str, schema: pa.Schema, *, primary_key: Sequence[str] = (),
                 write_mode: str = "append") -> None:
        #: what a user sees in messages: ``tenant.asset`` for a table, the dataset's URL for plain files
        self.identifier = identifier
        self.schema = schema
        self.primary_key = list(primary_key)
        self._write_mode = write_mode
        self._pending = Pending()
        self._committed_once = False
        self._base: Head | None = None

    # -- what a sink implements ------------------------------------------------------------------
    @abstractmethod
    def preflight(self) -> None:
        """Raise a one-line ``InfrastructureError`` unless the target can be reached and written (no data is
        written; an object store gets one probe object, deleted at once)."""

    def prepare(self) -> None:  # noqa: B027 - optional: most targets have nothing to create ahead of a run
        """Create what two first runs starting together would race to create (nothing by default)."""

    @abstractmethod
    def open(self) -> None:
        """Create the table (or add the asset's new columns) if needed; runs on the first write or commit, so a
        run that fails before them creates nothing."""

    @abstractmethod
    def write(self, data: pa.Table) -> None:
        """Write data files for these rows now; they become visible at the next ``commit``."""

    @abstractmethod
    def current_keys(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The primary-key columns of every row the target holds now, streamed (for ``detect_deletes``)."""

    @abstractmethod
    def _head(self) -> Head:
        """The target's newest committed version, as this sink sees it now."""

    @abstractmethod
    def _publish(self, head: Head, request: CommitRequest) -> tuple[CommitResult, Head]:
        """One commit attempt on top of ``head``: returns what it published and the new head. Raises
        ``CommitConflict`` when the target moved under it (nothing landed), ``CommitOutcomeUnknown`` when it
        cannot tell whether it landed, any other error when nothing landed. Deletes what it wrote itself
        (rewritten files) when nothing landed; the pending files are ``commit``'s."""

    @abstractmethod
    def _discard(self, files: list[Any]) -> None:
        """Delete data files no commit references (best effort: an unreferenced file is never read)."""

    def close(self) -> None:  # noqa: B027 - optional: most sinks hold no connection between calls
        """Release what the sink holds open (a database connection); uncommitted rows are dropped."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *_exc: object) -> None:
        """``with open_sink(plan) as sink:`` closes the sink however the block ends."""
        self.close()

    def _seal(self) -> None:  # noqa: B027 - optional: a sink whose files are complete once written
        """Finish the data files being written before a commit (nothing by default)."""

    @abstractmethod
    def _describe(self, file: Any) -> dict[str, Any]:
        """A pending data file as JSON-able text (its location, rows, …), for ``describe_pending``."""

    @abstractmethod
    def _undescribe(self, description: dict[str, Any]) -> Any:
        """The data file ``_describe`` described, ready to publish (read back from the file when needed)."""

    @abstractmethod
    def recent_properties(self, limit: int) -> list[dict[str, str]]:
        """The properties of the newest ``limit`` commits, newest first (empty when nothing was committed)."""

    # -- state -----------------------------------------------------------------------------------
    def current_state(self) -> StateEnvelope | None:
        """The state committed with the data the run starts from (None: nothing committed yet).

        The first call pins that commit as this sink's base: a commit by another writer after it is handled
        by the re-apply rule (see the module docstring)."""
        self._pin()
        assert self._base is not None
        return read_state(self._base.state, self.identifier)

    @property
    def base_version(self) -> int | None:
        """The snapshot id / manifest sequence ``current_state`` came from (None: nothing committed)."""
        self._pin()
        assert self._base is not None
        return self._base.version

    def reset_state(self, empty: StateEnvelope) -> CommitResult | None:
        """Commit ``empty`` as the state, changing no data, so the next run starts from the beginning.

        None when nothing was ever committed (there is no state to forget)."""
        self._pin()
        assert self._base is not None
        if self._base.version is None:
            return None
        request = CommitRequest(Pending(), empty.to_json(), {}, uuid.uuid4().hex, reset=True)
        try:
            return self._commit(request)
        except CommitOutcomeUnknown as exc:
            raise self._unknown(exc) from None

    def _pin(self, head: Head | None = None) -> None:
        """Remember the commit the caller's state comes from (once: this sink's own commits move it forward)."""
        if self._base is None:
            self._base = head if head is not None else self._head()

    # -- writes ----------------------------------------------------------------------------------
    @property
    def write_mode(self) -> str:
        """``append``, ``overwrite`` (the first commit replaces everything) or ``merge`` (by primary key)."""
        return self._write_mode

    @property
    def merges_by_key(self) -> bool:
        """Whether a commit replaces the rows whose keys it writes."""
        return self._write_mode == "merge" and bool(self.primary_key)

    def replace_at_first_commit(self) -> bool:
        """From now on the first commit replaces everything the target holds, later ones append (a Singer
        ACTIVATE_VERSION: the stream is the whole table). False, and no change, once this sink has committed."""
        if self._committed_once:
            return False
        self._write_mode = "overwrite"
        return True

    def delete_keys(self, keys: pa.Table) -> None:
        """Delete the rows with these primary keys in the next commit (rows gone from the source; merge only)."""
        if keys.num_rows and self.merges_by_key:
            self._pending.keys.append(keys.select(self.primary_key))
            self._pending.deletes += keys.num_rows

    @property
    def streams_rows(self) -> bool:
        """Whether ``write`` appends to an open file (closed at the target size or a commit), so small chunks cost
        no extra files: the runner then hands rows over as they are staged, and encoding overlaps reading."""
        return False

    @property
    def pending_rows(self) -> int:
        """Rows written since the last commit."""
        return self._pending.rows

    @property
    def pending_deletes(self) -> int:
        """Keys to delete in the next commit."""
        return self._pending.deletes

    def _track(self, data: pa.Table, files: Sequence[Any] = ()) -> None:
        """Count rows written (and the data files holding them); keep their keys when merging."""
        self._pending.files.extend(files)
        self._pending.rows += data.num_rows
        if self.merges_by_key:
            self._pending.keys.append(data.select(self.primary_key))

    @property
    def _replaces_all_now(self) -> bool:
        """Whether the next commit replaces everything (the first commit of an overwrite)."""
        return self._write_mode == "overwrite" and not self._committed_once

    # -- commit ----------------------------------------------------------------------------------
    def commit(self, state: StateEnvelope | None, properties: dict[str, str] | None = None) -> CommitResult:
        """Make the files written since the last commit visible together with ``state``, in one step.

        What the write mode requires is removed in the same step (merge: older rows with the keys written or
        deleted; overwrite: everything, at the first commit). On a conflict with another writer the commit is
        re-applied on the new head when that is provably correct, else ``ConcurrentCommitError``; whatever
        fails, nothing of this commit is visible and its files are deleted (kept only when the outcome is
        unknown, as they may be referenced)."""
        self._seal()
        self.open()
        self._pin()
        pending, self._pending = self._pending, Pending()
        request = CommitRequest(pending, state.to_json() if state is not None else NO_STATE,
                                dict(properties or {}), uuid.uuid4().hex)
        try:
            result = self._commit(request)
        except CommitOutcomeUnknown as exc:  # the files may be referenced now: keep them
            raise self._unknown(exc) from None
        except Exception:  # nothing of this commit landed: its files are referenced by nothing
            self._discard(pending.files)
            raise
        self._committed_once = True
        return result

    def describe_pending(self) -> list[dict[str, Any]]:
        """The data files written since the last commit (finished), described as JSON-able text."""
        self._seal()
        return [self._describe(f) for f in self._pending.files]

    def commit_once(self, tag: str, files: list[dict[str, Any]] | None = None,
                    properties: dict[str, str] | None = None) -> CommitResult | None:
        """Publish the pending files — or the files ``describe_pending`` described, written earlier — exactly once
        under ``tag``: None when a commit with this tag is already there (whoever made it), so two runs doing it
        at once, or a run redoing it after a kill, never add the same files twice. No state (a quarantine
        table's commits); it may go on top of any head."""
        self.open()
        if files is None:
            self._seal()
            pending, self._pending = self._pending, Pending()
        else:
            described = [self._undescribe(d) for d in files]
            pending = Pending(files=described, rows=sum(int(d.get("rows") or 0) for d in files))
        request = CommitRequest(pending, NO_STATE, {**(properties or {}), TAG_PROPERTY: tag}, uuid.uuid4().hex,
                                reset=True)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            if any(props.get(TAG_PROPERTY) == tag for props in self.recent_properties(COMMIT_ATTEMPTS * 4)):
                return None
            try:
                result, self._base = self._publish(self._head(), request)
            except CommitConflict as exc:
                log.info("tagged commit to %s conflicted (attempt %d/%d): %s", self.identifier, attempt,
                         COMMIT_ATTEMPTS, str(exc)[:200])
                time.sleep(random.uniform(0.05, 0.1) * 2 ** attempt)
                continue
            except CommitOutcomeUnknown as exc:
                raise self._unknown(exc) from None
            self._committed_once = True
            return result
        raise ConcurrentCommitError(f"{self.identifier}: the commit kept conflicting with other writers "
                                    f"({COMMIT_ATTEMPTS} attempts); running the job again completes it")

    def abort(self) -> None:
        """Delete the data files written since the last commit (no commit references them)."""
        pending, self._pending = self._pending, Pending()
        if pending.files:
            self._discard(pending.files)

    def _commit(self, request: CommitRequest) -> CommitResult:
        """Publish ``request`` on the newest head, re-applying it over other writers' commits when allowed."""
        assert self._base is not None
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                head = self._head()
                if not head.same_as(self._base) and not request.reset:
                    refusal = self._reapply_refusal(head.state, request)
                    if refusal:
                        raise ConcurrentCommitError(
                            f"{self.identifier}: another run committed first and this run's commit cannot be "
                            f"re-applied on top ({refusal}); nothing of it was written — run the job again to "
                            f"continue from what the other run committed")
                    log.warning("%s: another run committed version %s first; re-applying this commit on top of it",
                                self.identifier, head.version)
                result, self._base = self._publish(head, request)
            except CommitConflict as exc:
                log.info("commit to %s conflicted (attempt %d/%d): %s", self.identifier, attempt, COMMIT_ATTEMPTS,
                         str(exc)[:200])
                time.sleep(random.uniform(0.05, 0.1) * 2 ** attempt)
                continue
            return result
        raise ConcurrentCommitError(f"{self.identifier}: the commit kept conflicting with other writers "
                                    f"({COMMIT_ATTEMPTS} attempts); nothing of it was written — run the job again")

    def _reapply_refusal(self, theirs: str | None, request: CommitRequest) -> str | None:
        """Why this commit may not be re-applied on a head another writer moved (None: it may).

        Re-applying is correct only for a merge by primary key whose state covers theirs: with cursors that
        advance as rows change, a run whose cursor is not behind the other's read every row the other wrote
        in the same or a newer version, so replacing its keys and adding its rows again loses nothing,
        duplicates nothing and keeps the newer cursor."""
        if not self.merges_by_key:
            return f"write mode {self.write_mode}: its rows would be appended twice or replace newer ones"
        if request.pending.deletes:
            return "the rows it deletes were computed against the data before the other commit"
        assert self._base is not None
        try:
            base, other, ours = (StateEnvelope.from_json(t) for t in (self._base.state, theirs, request.state))
        except ValueError:
            return "the other commit's state cannot be read"
        if ours is None:
            return "this commit has no state"
        return ours.uncovered(other, base)

    def _unknown(self, exc: CommitOutcomeUnknown) -> DativoError:
        return DativoError(f"{self.identifier}: the commit's outcome is unknown ({exc}); `dativo_ingest state show` "
                           f"tells whether it landed — running the job again is safe")


def read_state(text: str | None, identifier: str) -> StateEnvelope | None:
    """The state envelope committed as ``text`` (None for no state); one line naming the target if unreadable."""
    if not text or text.strip() == NO_STATE:
        return None
    try:
        return StateEnvelope.from_json(text)
    except ValueError as exc:
        raise DativoError(f"{identifier}: the committed state cannot be read ({exc}); it was not written by this "
                          f"version of dativo_ingest — `dativo_ingest state reset` starts the job over") from None


__all__ = ["TAG_PROPERTY", "COMMIT_ATTEMPTS", "CommitConflict", "CommitOutcomeUnknown", "CommitRequest", "CommitResult",
           "ConcurrentCommitError", "Head", "Pending", "Sink", "read_state"]
