"""``test-connector --engine airbyte``: spec → config checked against the spec → check → discover → read → read
again with the state it left (the report: ``engines.common.conformance``).

Both reads go through the engine's own reader (``AirbyteReader``: the same fast record path, state translation and
failure rules as ``run``); the second read starts from the state the first one left, given back through the state
envelope the way a run gives it. The report names records that do not match their stream's declared schema,
streams that never emit state, state that does not resume, and output that is not valid protocol.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dativo_ingest.engines.airbyte.connector import AirbyteConnector, ConnectorFailed
from dativo_ingest.engines.airbyte.engine import (
    AirbyteReader,
    configure_catalog,
    cursor_fields,
    make_launcher,
    numeric_cursors,
)
from dativo_ingest.engines.airbyte.manifest import coerce_to_spec, connector_entry, secret_values, spec_problems
from dativo_ingest.engines.airbyte.protocol import ConfiguredCatalog, stream_states
from dativo_ingest.engines.airbyte.records import RecordBuffers, record_columns, record_data
from dativo_ingest.engines.airbyte.state import airbyte_state_from_envelope
from dativo_ingest.engines.common.conformance import (
    RecordChecks,
    Report,
    StreamStats,
    load_config_file,
    schema_error,
)
from dativo_ingest.errors import ConfigError, DativoError
from dativo_ingest.logs import redact
from dativo_ingest.state.envelope import StateEnvelope
from dativo_ingest.stream import Batch, Checkpoint


def airbyte_report(connector: str, *, project_root: Path, config_path: Path | None, streams: list[str] | None,
                   options: dict[str, Any]) -> Report:
    """Run the Airbyte connector ``connector`` (``engines/airbyte.yaml``, or ``options`` such as ``executable``)
    through its whole protocol and report what does not conform."""
    report = Report("airbyte", connector)
    entry = connector_entry(connector, project_root, options)
    launcher = make_launcher(entry, field_prefix="test-connector")
    with AirbyteConnector(connector, launcher, redact=redact) as conn:
        # spec
        try:
            spec = conn.spec(cached=False)
        except DativoError as exc:
            report.add("spec", False, str(exc))
            return report
        spec_error = schema_error(spec)
        report.add("spec", spec_error is None,
                   "connectionSpecification is a valid JSON schema" if spec_error is None
                   else f"connectionSpecification is not a valid JSON schema: {spec_error}")
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
        report.judge_discover({s.name: s.json_schema for s in discovered})
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


def _airbyte_read(conn: AirbyteConnector, config: dict[str, Any], catalog: ConfiguredCatalog, report: Report, *,
                  first: bool, state: Any = None) -> Any:
    """One read through the engine's reader; counts into ``report``; returns the state to resume from, as a run
    would give it back (None if the connector gave none)."""
    what = "read" if first else "resume"
    cursors = cursor_fields(catalog)
    schemas = {s.stream.name: s.stream.json_schema for s in catalog.streams}
    checks = RecordChecks(report, record_data, schemas.__getitem__)
    buffers = RecordBuffers({s.stream.name: record_columns(s.stream.json_schema) for s in catalog.streams},
                            observe=checks.lines if first else None)
    saved = _saved_cursors(state, report) if state is not None else {}
    if not first:
        for stats in report.streams.values():
            stats.resumed_records = 0
    envelope = StateEnvelope(engine="airbyte")
    unknown: set[str] = set()
    reader = AirbyteReader(conn, buffers, cursors)
    failure: str | None = None
    try:
        for message in reader.messages(conn.read_args(config, catalog.to_json(), state)):
            if isinstance(message, Batch):
                report.streams[message.stream].count(message.data, first=first, saved=saved.get(message.stream))
            elif isinstance(message, Checkpoint):
                _note_state(message, report, envelope, unknown, first=first)
    except ConnectorFailed as exc:
        failure = str(exc)
        report.add(what, False, failure)
    if reader.junk:
        report.add("protocol", False, f"{reader.junk} line(s) on stdout are not Airbyte messages "
                                      f"(first: {(reader.first_junk or '')[:80]!r})")
    unknown |= reader.ignored
    if unknown:
        report.add("protocol", False, f"records or states of streams not in the catalog: {', '.join(sorted(unknown))}")
    if first:
        report.judge_read("read", failure is None, "schema")
    return airbyte_state_from_envelope(
        envelope, [(s.stream.name, s.stream.namespace, cursors[s.stream.name]) for s in catalog.streams],
        numeric_cursors=numeric_cursors(catalog))


def _note_state(message: Checkpoint, report: Report, envelope: StateEnvelope, unknown: set[str], *,
                first: bool) -> None:
    """Count a STATE per stream it covers (a LEGACY one covers all), and keep it as a run would."""
    envelope.dialect = message.dialect
    if message.stream is None:
        envelope.shared.update(message.state)
        if message.dialect == "airbyte.legacy" and first:
            for stats in report.streams.values():
                stats.states += 1
        return
    if message.stream not in report.streams:
        unknown.add(message.stream)
        return
    envelope.streams[message.stream] = {**envelope.streams.get(message.stream, {}), **message.state}
    if message.dialect != "airbyte.legacy" and first:
        report.streams[message.stream].states += 1


def _saved_cursors(state: Any, report: Report) -> dict[str, Any]:
    """Each incremental stream's cursor value in the state the resumed read starts from."""
    out: dict[str, Any] = {}
    for message in state if isinstance(state, list) else []:
        for name, stream_state in stream_states(message):
            stats = report.streams.get(name)
            if stats and stats.cursor and isinstance(stream_state, dict):
                out[name] = stream_state.get(stats.cursor)
    return out


__all__ = ["airbyte_report"]
