"""``dativo_ingest test-connector``: the report every engine's conformance run fills in, and what they share.

For connector developers. Per engine (``airbyte.conformance``, ``singer.conformance``), the connector is run
through its whole protocol — its records read by the engine's own reader, the same fast path as ``run`` — and
every finding is a line of the report: PASS, FAIL (the exit code is non-zero) or NOTE. The report names records
that do not match their stream's declared schema (a sample of each stream, checked as the lines come), streams
that never emit state, state that does not resume (a second read from it returns records older than its cursor),
and output that is not valid protocol.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.engines.common.records import RecordOf, numbered_lines
from dativo_ingest.errors import ConfigError
from dativo_ingest.state.cursor import compare_cursors, cursor_after, cursor_key, cursor_to_text

MAX_VALIDATED = 10_000  # records per stream checked against the schema (bounded time on big reads)
MAX_EXAMPLES = 3


@dataclass
class Finding:
    """One line of the report."""

    check: str
    status: str  # PASS, FAIL or NOTE
    message: str


@dataclass
class StreamStats:
    """What one stream did in the reads of a conformance run."""

    records: int = 0
    validated: int = 0
    invalid: int = 0
    examples: list[str] = field(default_factory=list)
    states: int = 0
    sync_mode: str = ""
    cursor: str | None = None
    max_cursor: Any = None
    resumed_records: int | None = None
    older_than_state: int = 0

    def count(self, data: pa.RecordBatch, *, first: bool, saved: Any = None) -> None:
        """A batch the engine's reader made of this stream's records: on the first read, its rows and its greatest
        cursor; on the read resumed from the state, its rows and those before the state's cursor (``saved``)."""
        column = data.column(self.cursor) if self.cursor and self.cursor in data.schema.names else None
        if first:
            self.records += data.num_rows
            top = column_max(column) if column is not None else None
            if top is not None and cursor_after(top, self.max_cursor):
                self.max_cursor = top
        else:
            self.resumed_records = (self.resumed_records or 0) + data.num_rows
            if column is not None and saved is not None:
                self.older_than_state += count_before(column, saved)


@dataclass
class Report:
    """The findings of one conformance run, and what each stream did."""

    engine: str
    connector: str
    findings: list[Finding] = field(default_factory=list)
    streams: dict[str, StreamStats] = field(default_factory=dict)

    def add(self, check: str, ok: bool | None, message: str) -> None:
        """A finding: PASS (``ok``), FAIL (not ``ok``) or NOTE (None)."""
        self.findings.append(Finding(check, "NOTE" if ok is None else "PASS" if ok else "FAIL", message))

    @property
    def ok(self) -> bool:
        """No finding failed."""
        return not any(f.status == "FAIL" for f in self.findings)

    def judge_discover(self, schemas: dict[str, Any]) -> None:
        """After discovery: the streams found (``schemas``: each stream's JSON Schema), or those whose schema is
        not a valid JSON Schema."""
        bad = [f"{name}: {err}" for name, schema in schemas.items() if (err := schema_error(schema))]
        self.add("discover", bool(schemas) and not bad,
                 f"{len(schemas)} stream(s): {', '.join(schemas)}" if not bad
                 else f"stream schemas that are not valid JSON schemas: {'; '.join(bad)}")

    def judge_read(self, check: str, ok: bool, schema: str) -> None:
        """After the first read: how many records (``check`` is ``ok``), and which streams' records do not match
        their ``schema`` (the word the engine uses for it)."""
        total = sum(s.records for s in self.streams.values())
        self.add(check, ok, f"{total} records from {len(self.streams)} stream(s)")
        bad = {n: s for n, s in self.streams.items() if s.invalid}
        for name, stats in bad.items():
            self.add("records", False, f"stream '{name}': {stats.invalid} of {stats.validated} checked records do "
                                       f"not match its {schema} (first: {'; '.join(stats.examples)})")
        if not bad and total:
            self.add("records", True, f"every checked record matches its stream's {schema}")

    def judge_resume(self, incremental: list[str], *, older: str, passed: str) -> None:
        """After the second read with the state: FAIL each incremental stream that returned records older than
        the state (``older`` ends that message), else one PASS (``passed`` begins it)."""
        for name in incremental:
            stats = self.streams[name]
            if stats.older_than_state:
                self.add("resume", False, f"stream '{name}': {older.format(n=stats.older_than_state)}")
        if not any(f.check == "resume" for f in self.findings):
            resumed = ", ".join(f"{n}: {self.streams[n].resumed_records}" for n in incremental)
            self.add("resume", True, f"{passed} ({resumed})")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {"engine": self.engine, "connector": self.connector, "ok": self.ok,
                "findings": [f.__dict__ for f in self.findings],
                "streams": {k: {**v.__dict__, "max_cursor": _text(v.max_cursor)} for k, v in self.streams.items()}}

    def render(self) -> str:
        """The report as text, one finding a line."""
        lines = [f"test-connector --engine {self.engine} --connector {self.connector}"]
        lines += [f"  {f.status:<4} {f.check}: {f.message}" for f in self.findings]
        if self.streams:
            lines.append("  streams:")
            for name, s in self.streams.items():
                resumed = "" if s.resumed_records is None else f", {s.resumed_records} on the resumed read"
                lines.append(f"    {name} [{s.sync_mode}]: {s.records} records, {s.states} states, "
                             f"{s.invalid} not matching the schema{resumed}")
        failed = sum(f.status == "FAIL" for f in self.findings)
        lines.append(f"  result: {'PASS' if not failed else f'FAIL ({failed} problem(s))'}")
        return "\n".join(lines)


class RecordChecks:
    """The first ``MAX_VALIDATED`` records of each stream checked against its JSON Schema, as the engine's reader
    gathers their lines (its ``observe`` hook, called in the reader's thread): ``record_of`` decodes one line the
    engine's way, ``schema_of`` gives a stream's JSON Schema (the reader has it before the stream's records)."""

    def __init__(self, report: Report, record_of: RecordOf, schema_of: Callable[[str], Any]) -> None:
        self.report = report
        self.record_of = record_of
        self.schema_of = schema_of
        self.validators: dict[str, Any] = {}

    def validator(self, stream: str) -> Any:
        """The validator of ``stream``'s records (None: its schema is not a valid JSON Schema, nothing is checked)."""
        if stream not in self.validators:
            from jsonschema import Draft7Validator

            schema = self.schema_of(stream)
            self.validators[stream] = Draft7Validator(schema) if schema_error(schema) is None else None
        return self.validators[stream]

    def lines(self, stream: str, chunk: bytes) -> None:
        """Check the records of a run of ``stream``'s RECORD lines, while the stream's sample is not full."""
        stats = self.report.streams.get(stream)
        if stats is None or stats.validated >= MAX_VALIDATED or (validator := self.validator(stream)) is None:
            return
        for line, _ in numbered_lines([chunk], None):
            if stats.validated >= MAX_VALIDATED:
                return
            if not line.strip():
                continue
            stats.validated += 1
            errors = list(validator.iter_errors(self.record_of(line, None)))
            if errors:
                stats.invalid += 1
                if len(stats.examples) < MAX_EXAMPLES:
                    stats.examples.append(describe(errors[0]))


def column_max(column: pa.Array | pa.ChunkedArray) -> Any:
    """The greatest cursor value of a column (the cursor rule of ``state.cursor``; None when all are null)."""
    if _ordered(column.type):
        return pc.max(column).as_py()
    values = [v for v in column.to_pylist() if v is not None]
    return max(values, key=functools.cmp_to_key(compare_cursors)) if values else None


def count_before(column: pa.Array | pa.ChunkedArray, saved: Any) -> int:
    """How many values of a column are before the cursor value ``saved`` (the cursor rule of ``state.cursor``)."""
    bound = _bound(column.type, saved)
    if bound is not None:
        return int(pc.sum(pc.less(column, bound)).as_py() or 0)
    return sum(1 for v in column.to_pylist() if v is not None and cursor_after(saved, v))


def _ordered(kind: pa.DataType) -> bool:
    """Types whose order in Arrow is the cursor order: numbers, dates, times with a zone (naive ones are UTC)."""
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_timestamp(kind) \
        or pa.types.is_date(kind)


def _bound(kind: pa.DataType, saved: Any) -> pa.Scalar | None:
    """``saved`` as a scalar Arrow may compare a column of ``kind`` with, when the cursor rule orders them alike
    (numbers with numbers, instants with timestamps); None: compare one value at a time."""
    value = cursor_key(saved)[1]
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and isinstance(value, Decimal):
        return pa.scalar(int(value) if value == value.to_integral_value() else float(value))
    if pa.types.is_timestamp(kind) and isinstance(value, datetime):
        utc = value.astimezone(timezone.utc)
        return pa.scalar(utc if kind.tz else utc.replace(tzinfo=None), kind)
    return None


def load_config_file(path: Path) -> dict[str, Any]:
    """A connector config given with ``--config``: JSON, or YAML (``${VAR}`` from the environment)."""
    from dativo_ingest.config.expand import expand_vars, make_lookup
    from dativo_ingest.config.loader import read_yaml

    if not path.is_file():
        raise ConfigError(path, "file not found", field="--config", fix="give the path of the connector's config")
    if path.suffix == ".json":
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(path, f"not valid JSON ({exc})", field="--config", fix="fix the JSON") from None
    else:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, "must be an object of the connector's config keys", field="--config",
                          fix="write the connector's own keys, e.g. {\"count\": 100}")
    expanded, _ = expand_vars(data, make_lookup(None), path=path)
    return dict(expanded)


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (draft 7), or None."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return "not an object"
    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as exc:
        return " ".join(str(exc.message).split())[:200]
    return None


def describe(error: Any) -> str:
    """Where and how a record breaks its schema, without the value (it may be personal data)."""
    where = ".".join(str(p) for p in error.absolute_path) or "(record)"
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else "/".join(error.validator_value)
        return f"'{where}' is not of type {expected}"
    if error.validator == "required":
        return f"'{where}' misses a required property"
    return f"'{where}' fails '{error.validator}'"


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else cursor_to_text(value)


__all__ = ["MAX_EXAMPLES", "MAX_VALIDATED", "Finding", "RecordChecks", "Report", "StreamStats", "column_max",
           "count_before", "describe", "load_config_file", "schema_error"]
