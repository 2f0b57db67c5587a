"""The normalised stream: every engine yields only these message types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class Batch:
    """Rows of one stream, already columnar."""

    stream: str
    data: pa.RecordBatch
    #: where the rows came from (file path, table name), for error messages and quarantine
    origin: str | None = None
    #: the source kept only rows after the committed cursor itself, in its own order (a database's collation,
    #: an API's filter): the stage must not filter them again, and the stream's position is the one its
    #: ``Checkpoint`` reports under ``cursor`` — a filter is applied once, where its order is defined
    cursor_applied: bool = False


@dataclass(frozen=True)
class Rejected:
    """Raw records the source could not parse (e.g. a CSV line with too many fields).

    Strict mode fails the run on them; warn mode sends them to the quarantine table.
    """

    stream: str
    origin: str
    line: int | None
    reason: str
    raw: str


@dataclass(frozen=True)
class Checkpoint:
    """The engine's own state after every row before it has been yielded, in its own dialect."""

    stream: str | None
    state: dict[str, Any]
    dialect: str = "native"


@dataclass(frozen=True)
class SourceKeys:
    """Primary-key values the source holds now (``incremental.detect_deletes``), sent after a stream's rows.

    ``data`` is None on the last message of a stream: the key list is complete, and the runner may delete
    target rows whose key is not in it.
    """

    stream: str
    data: pa.RecordBatch | None


@dataclass(frozen=True)
class Log:
    level: str
    message: str


@dataclass(frozen=True)
class Trace:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


Message = Batch | Rejected | Checkpoint | SourceKeys | Log | Trace
