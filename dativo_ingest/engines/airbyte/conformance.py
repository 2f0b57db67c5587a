"""``dativo_ingest test-connector``: run a connector the way the engine will and report what it does wrong.

For connector developers. Per engine, the connector is run through its whole protocol and every
finding is a line of the report: PASS, FAIL (the exit code is non-zero) or NOTE. Airbyte:
spec → config checked against the spec → check → discover → read → read again with the state.
The report names records that do not match their stream's declared schema, streams that never emit
state, state that does not resume, and output that is not valid protocol.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dativo_ingest.errors import ConfigError, DativoError

MAX_VALIDATED = 10_000  # records per stream checked against the schema (bounded time on big reads)
MAX_EXAMPLES = 3


@dataclass
class Finding:
    check: str
    status: str  # PASS, FAIL or NOTE
    message: str


@dataclass
class StreamStats:
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


@dataclass
class Report:
    engine: str
    connector: str
    findings: list[Finding] = field(default_factory=list)
    streams: dict[str, StreamStats] = field(default_factory=dict)

    def add(self, check: str, ok: bool | None, message: str) -> None:
        self.findings.append(Finding(check, "NOTE" if ok is None else "PASS" if ok else "FAIL", message))

    @property
    def ok(self) -> bool:
        return not any(f.status == "FAIL" for f in self.findings)

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
        return {"engine": self.engine, "connector": self.connector, "ok": self.ok,
                "findings": [f.__dict__ for f in self.findings],
                "streams": {k: {**v.__dict__, "max_cursor": _text(v.max_cursor)} for k, v in self.streams.items()}}

    def render(self) -> str:
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


def test_connector(engine: str, connector: str, *, project_root: Path, config_path: Path | None = None,
                   streams: list[str] | None = None, options: dict[str, Any] | None = None) -> Report:
    """Run the conformance checks of ``engine`` against ``connector``."""
    if engine == "airbyte":
        return airbyte_report(connector, project_root=project_root, config_path=config_path, streams=streams,
                              options=options or {})
    if engine in ("singer", "meltano"):
        from dativo_ingest.engines.singer.conformance import singer_report

        return singer_report(connector, project_root=project_root, config_path=config_path, streams=streams,
                             options=options or {})
    raise NotImplementedError(f"test-connector --engine {engine}: not implemented (available: airbyte, singer)")


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


# -- Airbyte -----------------------------------------------------------------------------------------------


def airbyte_report(connector: str, *, project_root: Path, config_path: Path | None, streams: list[str] | None,
                   options: dict[str, Any]) -> Report:
    from dativo_ingest.engines.airbyte.connector import AirbyteConnector
    from dativo_ingest.engines.airbyte.engine import configure_catalog, make_launcher
    from dativo_ingest.engines.airbyte.manifest import coerce_to_spec, connector_entry, secret_values, spec_problems
    from dativo_ingest.logs import redact
    from dativo_ingest.paths import scratch_dir

    report = Report("airbyte", connector)
    entry = connector_entry(connector, project_root, options)
    launcher = make_launcher(entry, field_prefix="test-connector")
    with AirbyteConnector(connector, launcher, redact=redact, scratch=scratch_dir()) as conn:
        # spec
        try:
            spec = conn.spec(cached=False)
        except DativoError as exc:
            report.add("spec", False, str(exc))
            return report
        schema_error = _schema_error(spec)
        report.add("spec", schema_error is None,
                   "connectionSpecification is a valid JSON schema" if schema_error is None
                   else f"connectionSpecification is not a valid JSON schema: {schema_error}")
        # config
        if config_path is not None:
            config = load_config_file(config_path)
        elif entry.test_config is not None:
            config = copy.deepcopy(entry.test_config)
        else:
            report.add("config", False, "no config: give --config FILE (the connector's own keys, JSON or YAML)")
            return report
        config = coerce_to_spec(config, spec)
        redact.add(secret_values(config, spec))
        problems = spec_problems(config, spec)
        report.add("config", not problems, "the config matches the spec" if not problems else "; ".join(problems))
        # check
        try:
            status, message = conn.check(config)
            report.add("check", status == "SUCCEEDED", f"{status}{': ' + message if message else ''}")
        except DativoError as exc:
            report.add("check", False, str(exc))
        # discover
        try:
            discovered = conn.discover(config)
        except DativoError as exc:
            report.add("discover", False, str(exc))
            return report
        bad_schemas = [f"{s.name}: {err}" for s in discovered if (err := _schema_error(s.json_schema))]
        report.add("discover", bool(discovered) and not bad_schemas,
                   f"{len(discovered)} stream(s): {', '.join(s.name for s in discovered)}" if not bad_schemas
                   else f"stream schemas that are not valid JSON schemas: {'; '.join(bad_schemas)}")
        if not discovered:
            return report
        try:
            catalog = configure_catalog(discovered, streams, incremental=True, where="--streams")
        except ConfigError as exc:
            report.add("discover", False, str(exc))
            return report
        for configured in catalog.streams:
            report.streams[configured.stream.name] = StreamStats(
                sync_mode=configured.sync_mode,
                cursor=configured.cursor_field[0] if configured.cursor_field else None)
        # read, then read again from the state it left
        state = _airbyte_read(conn, config, catalog, report, first=True)
        incremental = [n for n, s in report.streams.items() if s.sync_mode == "incremental"]
        for name, stats in report.streams.items():
            if stats.records and not stats.states:
                report.add("state", False if name in incremental else None,
                           f"stream '{name}' emitted {stats.records} records and never a STATE"
                           + ("" if name in incremental else " (full refresh: a rerun reads everything)"))
        if incremental and state is not None and report.ok:
            _airbyte_read(conn, config, catalog, report, first=False, state=state)
            report.judge_resume(
                incremental, older="the read resumed from the state returned {n} record(s) older than the state's "
                                   "cursor", passed="a second read with the state returned only newer records")
        elif incremental and state is None and report.ok:
            report.add("resume", False, "incremental streams but no STATE to resume from")
    return report


def _schema_error(schema: Any) -> str | None:
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return "not an object"
    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as exc:
        return " ".join(str(exc.message).split())[:200]
    return None


def _airbyte_read(conn: Any, config: dict[str, Any], catalog: Any, report: Report, *, first: bool,
                  state: Any = None) -> Any:
    """One read; counts into ``report``; returns the state to resume from (None if the connector gave none)."""
    from jsonschema import Draft7Validator

    from dativo_ingest.engines.airbyte.connector import FailureNotes
    from dativo_ingest.engines.airbyte.protocol import (
        RECORD,
        STATE,
        STATE_GLOBAL,
        STATE_LEGACY,
        TRACE,
        ProtocolError,
        check_record,
        parse_message,
        state_kind,
        stream_states,
    )
    from dativo_ingest.state.cursor import cursor_after

    what = "read" if first else "resume"
    validators = {s.stream.name: Draft7Validator(s.stream.json_schema) for s in catalog.streams}
    state_cursors: dict[str, Any] = {}
    if state is not None:
        for message in state if isinstance(state, list) else []:
            for name, stream_state in stream_states(message):
                stats = report.streams.get(name)
                if stats and stats.cursor and isinstance(stream_state, dict):
                    state_cursors[name] = stream_state.get(stats.cursor)
        for stats in report.streams.values():
            stats.resumed_records = 0
    notes = FailureNotes()
    last_stream_states: dict[str, dict[str, Any]] = {}
    last_global: dict[str, Any] | None = None
    junk: list[str] = []
    invalid_messages: list[str] = []
    unknown_streams: set[str] = set()
    args = conn.read_args(config, catalog.to_json(), state)
    for raw in conn.read_lines(args):
        message = parse_message(raw)
        if message is None:
            junk.append(raw.decode("utf-8", "replace").strip()[:80])
            continue
        kind = message["type"]
        notes.note(message)
        try:
            if kind == RECORD:
                name, data = check_record(message)
                stats = report.streams.get(name)
                if stats is None:
                    unknown_streams.add(name)
                    continue
                if first:
                    stats.records += 1
                    if stats.validated < MAX_VALIDATED:
                        stats.validated += 1
                        errors = list(validators[name].iter_errors(data))
                        if errors:
                            stats.invalid += 1
                            if len(stats.examples) < MAX_EXAMPLES:
                                stats.examples.append(_describe(errors[0]))
                    value = data.get(stats.cursor) if stats.cursor else None
                    if value is not None and (stats.max_cursor is None or cursor_after(value, stats.max_cursor)):
                        stats.max_cursor = value
                else:
                    stats.resumed_records = (stats.resumed_records or 0) + 1
                    value = data.get(stats.cursor) if stats.cursor else None
                    saved = state_cursors.get(name)
                    if value is not None and saved is not None and cursor_after(saved, value):
                        stats.older_than_state += 1
            elif kind == STATE:
                body = message.get("state")
                if not isinstance(body, dict):
                    raise ProtocolError("STATE message without a 'state' object")
                state_type = state_kind(body)
                if state_type == STATE_LEGACY:
                    last_global = {"legacy": body.get("data")}
                    for stats in report.streams.values():
                        stats.states += int(first)
                elif state_type == STATE_GLOBAL:
                    last_global = body
                for name, _ in stream_states(body):
                    if name not in report.streams:
                        unknown_streams.add(name)
                        continue
                    report.streams[name].states += int(first)
                    if state_type != STATE_GLOBAL:
                        last_stream_states[name] = body
            elif kind == TRACE and (message.get("trace") or {}).get("type") == "ERROR":
                report.add(what, False, f"TRACE ERROR: {notes.trace_error}")
        except ProtocolError as exc:
            invalid_messages.append(str(exc))
    rc, stderr = conn.finish()
    if rc != 0:
        report.add(what, False, f"the connector exited with code {rc}: {notes.reason(rc, stderr)}")
    if junk:
        report.add("protocol", False, f"{len(junk)} line(s) on stdout are not Airbyte messages (first: {junk[0]!r})")
    if invalid_messages:
        report.add("protocol", False, f"{len(invalid_messages)} invalid message(s) (first: {invalid_messages[0]})")
    if unknown_streams:
        report.add("protocol", False, f"records or states of streams not in the catalog: "
                                      f"{', '.join(sorted(unknown_streams))}")
    if first:
        total = sum(s.records for s in report.streams.values())
        report.add("read", rc == 0 and not notes.trace_error, f"{total} records from {len(report.streams)} stream(s)")
        bad = {n: s for n, s in report.streams.items() if s.invalid}
        for name, stats in bad.items():
            report.add("records", False, f"stream '{name}': {stats.invalid} of {stats.validated} checked records do "
                                         f"not match its schema (first: {'; '.join(stats.examples)})")
        if not bad and total:
            report.add("records", True, "every checked record matches its stream's schema")
    if last_global is not None and "legacy" in last_global:
        return last_global["legacy"]
    if last_global is not None:
        return [last_global]
    return list(last_stream_states.values()) or None


def _describe(error: Any) -> str:
    """Where and how a record breaks its schema, without the value (it may be personal data)."""
    where = ".".join(str(p) for p in error.absolute_path) or "(record)"
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else "/".join(error.validator_value)
        return f"'{where}' is not of type {expected}"
    if error.validator == "required":
        return f"'{where}' misses a required property"
    return f"'{where}' fails '{error.validator}'"


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else str(value)
