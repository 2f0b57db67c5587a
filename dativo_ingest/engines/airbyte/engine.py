"""The Airbyte engine: run a real Airbyte source connector and turn its messages into the normalised stream.

spec → (config mapped by ``engines/airbyte.yaml``, checked against the spec) → discover → a
ConfiguredAirbyteCatalog built from the asset → ``read`` with the state translated from the envelope.

RECORDs are gathered per stream into Arrow batches (``batch_rows`` rows or ``batch_bytes`` of input,
typed from the stream's JSON schema, see ``airbyte.records``). A stream's rows are held back until the
connector's next STATE for that stream (up to ``hold_bytes`` of Arrow data, then they are passed on: the
checkpoint buffer of ``engines.common.checkpoints``),
so that when the connector fails — a TRACE ERROR, a non-zero exit, an invalid message — every row the
runner has seen is covered by a checkpoint: the runner commits exactly the rows before the last STATE,
and nothing after it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dativo_ingest.engines.airbyte.connector import AirbyteConnector, ConnectorFailed, FailureNotes, one_line
from dativo_ingest.engines.airbyte.manifest import (
    ConnectorEntry,
    apply_control_config,
    coerce_to_spec,
    connector_entry,
    control_path,
    render_config,
    save_control_config,
    secret_values,
    validate_config,
)
from dativo_ingest.engines.airbyte.protocol import (
    CONTROL,
    FULL_REFRESH,
    INCREMENTAL,
    LOG,
    RECORD,
    STATE,
    STATE_STREAM,
    TRACE,
    AirbyteStream,
    ConfiguredCatalog,
    ConfiguredStream,
    ProtocolError,
    check_record,
    control_config,
    parse_message,
    record_prefix,
    state_kind,
    stream_states,
)
from dativo_ingest.engines.airbyte.records import RecordBuffers, record_columns
from dativo_ingest.engines.airbyte.state import airbyte_checkpoints, airbyte_state_from_envelope
from dativo_ingest.engines.common.checkpoints import HOLD_BYTES
from dativo_ingest.engines.common.files import write_json_atomic
from dativo_ingest.engines.common.read_ahead import run_ahead
from dativo_ingest.engines.common.records import BATCH_BYTES, BATCH_ROWS
from dativo_ingest.engines.common.schema import INT, NUMBER, column_kind
from dativo_ingest.engines.launchers.base import ConnectorProcess, Launcher
from dativo_ingest.engines.launchers.choose import LauncherSpec, choose_launcher
from dativo_ingest.engines.launchers.early import EarlyStart, NeedsConnector
from dativo_ingest.engines.launchers.local import LocalLauncher
from dativo_ingest.engines.launchers.venv import VenvLauncher
from dativo_ingest.errors import ConfigError
from dativo_ingest.logs import redact
from dativo_ingest.paths import dativo_home
from dativo_ingest.stream import Log, Message, Trace

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)

_LEVELS = {"FATAL": "CRITICAL", "ERROR": "ERROR", "WARN": "WARNING", "WARNING": "WARNING", "INFO": "INFO",
           "DEBUG": "DEBUG", "TRACE": "DEBUG"}


# -- choosing and configuring the connector ----------------------------------------------------------------


def engine_options(plan: JobPlan) -> dict[str, Any]:
    """``engine.options.airbyte`` of the recipe ⊕ job (see ``JobPlan.engine_options``)."""
    options = plan.engine_options.get("airbyte") if isinstance(plan.engine_options, dict) else None
    if options is not None and not isinstance(options, dict):
        raise ConfigError(plan.job_path, "must be a mapping", field="engine.options.airbyte",
                          fix="give launcher, package, version, image, executable, config, batch_rows")
    return dict(options or {})


def make_launcher(entry: ConnectorEntry, *, docker_client: Any = None, field_prefix: str = "engine.options.airbyte"
                  ) -> Launcher:
    """The launcher (venv, docker, local) that starts the connector of ``entry``."""
    return choose_launcher(LauncherSpec(
        launcher=entry.launcher, package=entry.package, version=entry.version, executable=entry.executable,
        image=entry.image, prefix=entry.prefix, network=entry.network, path=entry.path, field_prefix=field_prefix,
    ), docker_client=docker_client)


def wanted_streams(plan: JobPlan) -> list[str]:
    """``source.objects``, else the object of the first source file, else the asset's ``object`` (or name)."""
    if plan.source.objects:
        return [str(o) for o in plan.source.objects]
    files = plan.source.file_entries()
    if files and files[0].object:
        return [str(files[0].object)]
    return [plan.default_stream]


def template_context(plan: JobPlan) -> dict[str, Any]:
    """Names a config template may use besides the connection's keys: ``stream`` and ``file``."""
    context: dict[str, Any] = {"stream": wanted_streams(plan)[0]}
    files = plan.source.file_entries()
    path = files[0].path if files else None
    if path:
        p = Path(str(path))
        context["file"] = str(p if p.is_absolute() else (plan.project_root / p).resolve())
    return context


# -- the configured catalog --------------------------------------------------------------------------------


def configure_catalog(streams: list[AirbyteStream], wanted: list[str] | None, *, incremental: bool = True,
                      cursor_field: str | None = None, primary_key: list[str] | None = None,
                      fields: list[str] | None = None, write_mode: str = "append",
                      where: Path | str | None = None) -> ConfiguredCatalog:
    """The streams to read, each incremental when it supports it (and ``incremental``), with cursor and key.

    ``cursor_field`` / ``primary_key`` / ``fields`` come from the asset and job; a stream's own
    (source-defined) cursor wins, and its default cursor and key are used when the job gives none.
    ``fields`` narrows each stream's JSON schema to the selected properties.
    """
    by_name = {s.name: s for s in streams}
    names = wanted if wanted else [s.name for s in streams]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(where, f"stream(s) {', '.join(unknown)} not in the connector's catalog "
                          f"(available: {', '.join(sorted(by_name)) or 'none'})", field="source.objects",
                          fix="name streams the connector discovers, in source.objects or the asset's object")
    out: list[ConfiguredStream] = []
    for name in names:
        stream = by_name[name]
        props = stream.properties
        lower = {k.lower(): k for k in props}
        cursor: list[str] = []
        if stream.source_defined_cursor:
            cursor = list(stream.default_cursor_field)
        elif cursor_field:
            cursor = [lower.get(cursor_field.lower(), cursor_field)]
        else:
            cursor = list(stream.default_cursor_field)
        sync_mode = INCREMENTAL if incremental and stream.supports_incremental and \
            (cursor or stream.source_defined_cursor) else FULL_REFRESH
        key: list[list[str]] = []
        if primary_key and all(k.lower() in lower for k in primary_key):
            key = [[lower[k.lower()]] for k in primary_key]
        elif stream.source_defined_primary_key:
            key = [list(p) for p in stream.source_defined_primary_key]
        destination = "overwrite" if write_mode == "overwrite" else "append_dedup" if key and write_mode == "merge" \
            else "append"
        schema = None
        if fields and props:
            keep = {lower[f.lower()] for f in fields if f.lower() in lower}
            keep |= {c for c in cursor if c in props} | {p[0] for p in key if p and p[0] in props}
            if keep:
                schema = {**stream.json_schema, "properties": {k: v for k, v in props.items() if k in keep}}
        out.append(ConfiguredStream(stream, sync_mode=sync_mode, destination_sync_mode=destination,
                                    cursor_field=cursor if sync_mode == INCREMENTAL else [],
                                    primary_key=key, json_schema=schema))
    return ConfiguredCatalog(out)


def cursor_fields(catalog: ConfiguredCatalog) -> dict[str, str | None]:
    """Each configured stream's cursor field (its own, else its default; None: no cursor)."""
    return {s.stream.name: (s.cursor_field[0] if s.cursor_field else
                            (s.stream.default_cursor_field[0] if s.stream.default_cursor_field else None))
            for s in catalog.streams}


def numeric_cursors(catalog: ConfiguredCatalog) -> frozenset[str]:
    """The streams whose cursor is declared a number (their cursor is given back as a number)."""
    out = set()
    for name, field in cursor_fields(catalog).items():
        stream = catalog.by_name()[name].stream
        if field and column_kind(stream.properties.get(field)) in (INT, NUMBER):
            out.add(name)
    return frozenset(out)


# -- reading -----------------------------------------------------------------------------------------------


def catalog_cache(entry: ConnectorEntry, config: dict[str, Any]) -> Path:
    """Where the discovered catalog of this connector (package, version, image, executable) and config is kept."""
    key = orjson.dumps([entry.package, entry.version, entry.image, entry.executable, config],
                       option=orjson.OPT_SORT_KEYS)
    return dativo_home() / "airbyte" / "catalogs" / f"{entry.name}-{hashlib.sha256(key).hexdigest()[:16]}.json"


def discover_cached(connector: AirbyteConnector, entry: ConnectorEntry, config: dict[str, Any], wanted: list[str],
                    *, fields: Sequence[str] = (), refresh: bool = False, cached_only: bool = False
                    ) -> list[AirbyteStream]:
    """``discover``, once per connector and config: the catalog is kept (no secrets in it, only a hash of the
    config in its name) and discovered again when a wanted stream or one of the asset's ``fields`` is missing
    from it (a file that gained a column), or ``refresh`` is asked (``run --refresh-catalog``). ``cached_only``:
    ``NeedsConnector`` instead of discovering."""
    path = catalog_cache(entry, config)
    if not refresh and path.is_file():
        try:
            streams = {s.name: s for s in (AirbyteStream.from_dict(d) for d in orjson.loads(path.read_bytes()))}
            if all(w in streams and {f.lower() for f in fields} <= {p.lower() for p in streams[w].properties}
                   for w in wanted):
                return list(streams.values())
        except (orjson.JSONDecodeError, ProtocolError, TypeError):
            pass
    if cached_only:
        raise NeedsConnector("discover")
    streams = connector.discover(config)
    write_json_atomic(path, [s.raw for s in streams])
    return streams


class AirbyteEngine:
    """Real Airbyte source connectors: spec, discover (cached), read with the state translated from the envelope."""

    name = "airbyte"

    def __init__(self, *, docker_client: Any = None) -> None:
        self.docker_client = docker_client

    def preflight(self, plan: JobPlan) -> None:
        """The connector has a manifest entry (or the job names its package, image or executable) and, when it is
        installed, its config matches its spec. ``check`` installs and pulls nothing: a connector not installed
        yet is a note ("installs … on first run")."""
        options = engine_options(plan)
        entry = connector_entry(plan.source_connector, plan.project_root, options, job_path=plan.job_path)
        launcher = make_launcher(entry, docker_client=self.docker_client)
        if isinstance(launcher, VenvLauncher) and not launcher.is_installed():
            plan.notes.append(f"installs {launcher.pip_url} on first run")
            return
        if not isinstance(launcher, VenvLauncher):
            return  # an image or an executable of the job's: checked against its spec by the run
        connector = AirbyteConnector(entry.name, launcher, redact=_redactor(plan))
        try:
            spec = connector.spec()
            connection = plan.source.connection_values
            mapped = coerce_to_spec(render_config(entry, connection, extra=template_context(plan),
                                                  overrides=options.get("config")), spec)
            config, _ = apply_control_config(control_path(plan.tenant_id, plan.job_name), mapped)
            validate_config(config, spec, connector=entry.name, path=plan.job_path)
        finally:
            connector.close()

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """Run the connector's ``read`` and yield its records as batches, each STATE as checkpoints after the rows
        it covers (see the module docstring)."""
        options = engine_options(plan)
        entry = connector_entry(plan.source_connector, plan.project_root, options, job_path=plan.job_path)
        launcher = make_launcher(entry, docker_client=self.docker_client)
        return self._read(plan, state, entry, launcher, options)

    def _read(self, plan: JobPlan, state: StateEnvelope, entry: ConnectorEntry, launcher: Launcher,
              options: dict[str, Any]) -> Iterator[Message]:
        connector = AirbyteConnector(entry.name, launcher, redact=_redactor(plan))
        try:
            prepared = PreparedRead(plan, entry, connector, options)
            yield from prepared.notes()
            prepared.start(prepared.state_doc(state))
            yield from prepared.messages()
        finally:
            connector.close()

    def start_early(self, plan: JobPlan, guess: StateEnvelope) -> EarlyStart | None:
        """Start ``read`` with the state ``guess`` gives (the local mirror's) before the committed state is known
        (``engines.launchers.early``); None when that would run another connector command first (spec or
        discover not cached, a venv not installed) or the connector runs in Docker."""
        options = engine_options(plan)
        entry = connector_entry(plan.source_connector, plan.project_root, options, job_path=plan.job_path)
        launcher = make_launcher(entry, docker_client=self.docker_client)
        if not isinstance(launcher, (VenvLauncher, LocalLauncher)) or \
                (isinstance(launcher, VenvLauncher) and not launcher.is_installed()):
            return None
        connector = AirbyteConnector(entry.name, launcher, redact=_redactor(plan))
        try:
            prepared = PreparedRead(plan, entry, connector, options, cached_only=True)
            if guess.dialect == "airbyte.global" or uses_cdc(prepared.config):
                raise NeedsConnector("CDC: the connector may acknowledge its log position as it starts")
            given = prepared.state_doc(guess)
            process = prepared.start(given)
        except NeedsConnector:
            connector.close()
            return None
        except BaseException:
            connector.close()
            raise

        def consume(committed: StateEnvelope, process: ConnectorProcess) -> Iterator[Message]:
            yield from prepared.notes()
            yield from prepared.messages()

        return EarlyStart(f"airbyte {entry.name}", process, given, translate=prepared.state_doc,
                          start=prepared.start, consume=consume, cleanup=connector.close)


def uses_cdc(config: Any) -> bool:
    """Whether a connector's config asks for change data capture (``replication_method: {method: CDC}``, as
    Airbyte's database sources spell it): such a connector may acknowledge its log position from the state it is
    given as soon as it starts, so it is never started on a guessed state."""
    if isinstance(config, dict):
        return any((k in ("method", "replication_method") and isinstance(v, str) and v.upper() == "CDC")
                   or uses_cdc(v) for k, v in config.items())
    if isinstance(config, list):
        return any(uses_cdc(v) for v in config)
    return False


class PreparedRead:
    """Everything a ``read`` needs but the state: the connector's config (mapped, checked against its spec), the
    configured catalog, the record buffers. ``start(state_doc)`` starts it, ``messages()`` reads it.
    ``cached_only``: ``NeedsConnector`` rather than install the connector or run ``spec`` or ``discover``."""

    def __init__(self, plan: JobPlan, entry: ConnectorEntry, connector: AirbyteConnector, options: dict[str, Any], *,
                 cached_only: bool = False) -> None:
        self.entry = entry
        self.connector = connector
        connection = plan.source.connection_values
        spec = connector.spec(cached_only=cached_only)
        mapped = coerce_to_spec(render_config(entry, connection, extra=template_context(plan),
                                              overrides=options.get("config")), spec)
        self.control_file = control_path(plan.tenant_id, plan.job_name)
        self.mapped = mapped
        self.config, self.kept = apply_control_config(self.control_file, mapped)
        validate_config(self.config, spec, connector=entry.name, path=plan.job_path)
        redact.add(secret_values(self.config, spec))
        self.full_refresh = plan.read.full_refresh
        refresh = bool(plan.engine_options.get("refresh_catalog") or options.get("refresh_catalog"))
        if refresh and cached_only:
            raise NeedsConnector("discover (--refresh-catalog)")
        self.catalog = configure_catalog(
            discover_cached(connector, entry, self.config, wanted_streams(plan), fields=plan.asset.field_names,
                            refresh=refresh, cached_only=cached_only),
            wanted_streams(plan), incremental=not self.full_refresh,
            cursor_field=plan.read.default_cursor, primary_key=list(plan.asset.primary_key),
            fields=plan.asset.field_names, write_mode=plan.write_mode, where=plan.job_path)
        self.cursors = cursor_fields(self.catalog)
        self.numeric = numeric_cursors(self.catalog)
        columns = {s.stream.name: record_columns(s.stream.json_schema, plan.asset.field_names)
                   for s in self.catalog.streams}
        self.buffers = RecordBuffers(columns, batch_rows=int(options.get("batch_rows") or BATCH_ROWS),
                                     batch_bytes=int(options.get("batch_bytes") or BATCH_BYTES),
                                     hold_bytes=int(options.get("hold_bytes") or HOLD_BYTES))

    def state_doc(self, state: StateEnvelope) -> Any:
        """The ``--state`` document for the connector from an envelope (None: read from the beginning)."""
        if self.full_refresh:
            return None
        return airbyte_state_from_envelope(
            state, [(s.stream.name, s.stream.namespace, self.cursors[s.stream.name]) for s in self.catalog.streams],
            numeric_cursors=self.numeric)

    def notes(self) -> Iterator[Message]:
        """What the run says before reading (a config the connector updated earlier is used)."""
        if self.kept:
            yield Log("INFO", f"{self.entry.name}: using the config the connector updated earlier "
                              f"({self.control_file})")

    def start(self, state_doc: Any) -> ConnectorProcess:
        """Start ``read`` with ``state_doc``."""
        log.info("airbyte %s: reading %s (%s)", self.entry.name,
                 ", ".join(f"{s.stream.name} [{s.sync_mode}]" for s in self.catalog.streams),
                 "resuming from state" if state_doc is not None else "from the beginning")
        return self.connector.start(self.connector.read_args(self.config, self.catalog.to_json(), state_doc))

    def messages(self) -> Iterator[Message]:
        """The normalised messages of the started ``read``."""
        reader = AirbyteReader(self.connector, self.buffers, self.cursors, (self.control_file, self.mapped,
                                                                            self.config))
        return reader.messages(None)


def read_messages(connector: AirbyteConnector, args: list[str], buffers: RecordBuffers,
                  cursors: dict[str, str | None], *, control: tuple[Path, dict[str, Any], dict[str, Any]] | None = None
                  ) -> Iterator[Message]:
    """Run ``read`` and translate its output (see the module docstring for what a failure commits)."""
    return AirbyteReader(connector, buffers, cursors, control).messages(args)


class AirbyteReader:
    """One ``read``: stdout comes in blocks of whole lines; a block of nothing but one stream's RECORDs (the
    common case) goes to the buffers whole, without a Python step per line.

    After the read: ``junk`` (lines that were not Airbyte messages, the first in ``first_junk``), ``ignored``
    (streams whose records were not asked for) and ``notes`` (what the connector said about a failure)."""

    def __init__(self, connector: AirbyteConnector, buffers: RecordBuffers, cursors: dict[str, str | None],
                 control: tuple[Path, dict[str, Any], dict[str, Any]] | None = None) -> None:
        self.connector = connector
        self.name = connector.name
        self.buffers = buffers
        self.cursors = cursors
        self.control = control
        self.notes = FailureNotes()
        self.ignored: set[str] = set()
        self.junk = 0
        self.first_junk: str | None = None

    def messages(self, args: list[str] | None) -> Iterator[Message]:
        """The normalised messages of ``read args`` (None: of the ``read`` the connector has started). The reading
        and parsing run a little ahead of the caller, in a thread (``run_ahead``): the same messages in the same
        order, while the caller stages the previous batch."""

        def stop() -> None:  # the consumer stopped early: unblock the thread reading stdout
            process = self.connector.process
            if process is not None:
                process.kill()

        return run_ahead(self.run(args), stop=stop, name=f"airbyte-{self.name}")

    def failed(self, reason: str) -> ConnectorFailed:
        """The run's error, and whether the runner may commit what the last STATE covers."""
        return ConnectorFailed(one_line(f"airbyte connector '{self.name}' failed: {reason}", self.connector.redact),
                               commit_checkpointed=not self.buffers.dirty)

    def run(self, args: list[str] | None) -> Iterator[Message]:
        """The messages of one ``read``, parsed in this thread (``messages`` runs it ahead)."""
        buffers = self.buffers
        for block in self.connector.read_blocks(args) if args is not None else self.connector.blocks():
            head = record_prefix(block)
            if head is not None and head[0] in buffers.columns and block.endswith(b"\n"):
                lines = block.count(b"\n")
                if block.count(b"\n" + head[1]) == lines - 1:  # every line: a RECORD of this stream
                    yield from self.records(head[0], block, lines)
                    continue
            for raw in block.splitlines(keepends=True):
                if raw.strip():
                    yield from self.line(raw)
        rc, stderr = self.connector.finish()
        if rc != 0:
            raise self.failed(self.notes.reason(rc, stderr))
        try:
            yield from buffers.flush_all()
        except ProtocolError as exc:
            raise self.failed(f"it sent an invalid RECORD message: {exc}") from None
        if self.junk:
            yield Log("WARNING", f"{self.name}: {self.junk} line(s) on stdout were not Airbyte messages and were "
                                 "ignored")

    def records(self, stream: str, lines: bytes, count: int) -> Iterator[Message]:
        """``count`` RECORD lines of ``stream``, raw, into the buffers."""
        try:
            yield from self.buffers.add(stream, lines, count)
        except ProtocolError as exc:
            raise self.failed(f"it sent an invalid RECORD message: {exc}") from None

    def line(self, raw: bytes) -> Iterator[Message]:
        """One stdout line that is not part of a block of RECORDs."""
        head = record_prefix(raw)
        if head is not None and head[0] in self.buffers.columns:
            yield from self.records(head[0], raw, 1)
            return
        message = parse_message(raw)
        if message is None:
            self.junk += 1
            self.notes.junk = raw.decode("utf-8", "replace").strip()
            self.first_junk = self.first_junk or self.notes.junk
            if self.junk <= 3:
                text = one_line(raw.decode("utf-8", "replace"))[:200]
                yield Log("WARNING", f"{self.name}: not an Airbyte message, ignored: {text}")
            return
        kind = message["type"]
        try:
            yield from self.message(kind, message)
        except ProtocolError as exc:
            raise self.failed(f"it sent an invalid {kind} message: {exc}") from None

    def message(self, kind: str, message: dict[str, Any]) -> Iterator[Message]:
        """One parsed message of type ``kind``."""
        buffers, name = self.buffers, self.name
        if kind == RECORD:
            stream, data = check_record(message)
            if stream in buffers.columns:
                line = orjson.dumps({"type": RECORD, "record": {"stream": stream, "data": data}}) + b"\n"
                yield from buffers.add(stream, line, 1)
            elif stream not in self.ignored:
                self.ignored.add(stream)
                yield Log("WARNING", f"{name}: records of stream '{stream}' (not asked for) ignored")
        elif kind == STATE:
            state = message.get("state")
            if not isinstance(state, dict):
                raise ProtocolError("STATE message without a 'state' object")
            if state_kind(state) == STATE_STREAM:
                for stream, _ in stream_states(state):
                    if stream in buffers.columns:
                        yield from buffers.flush(stream)
            else:  # GLOBAL and LEGACY states cover every stream
                yield from buffers.flush_all()
            yield from airbyte_checkpoints(state, self.cursors)
        elif kind == TRACE:
            self.notes.note(message)
            trace = message.get("trace") or {}
            trace_type = str(trace.get("type") or "")
            if trace_type == "ERROR":
                raise self.failed(self.notes.trace_error or "TRACE ERROR")
            yield _trace(trace_type, trace)
        elif kind == LOG:
            self.notes.note(message)
            entry = message.get("log") or {}
            level = _LEVELS.get(str(entry.get("level") or "INFO").upper(), "INFO")
            yield Log(level, f"{name}: {one_line(str(entry.get('message') or ''))}")
        elif kind == CONTROL:
            updated = control_config(message)
            if updated is not None and self.control is not None:
                path, mapped, _ = self.control
                save_control_config(path, mapped, updated)
                redact.add([v for v in _strings(updated) if v not in _strings(mapped)])
                yield Log("INFO", f"{name}: the connector updated its config; kept in {path} for the next runs")


def _trace(kind: str, trace: dict[str, Any]) -> Trace:
    if kind == "ESTIMATE":
        est = trace.get("estimate") or {}
        return Trace("estimate", {"stream": est.get("name"), "scope": est.get("type"),
                                  "rows": est.get("row_estimate"), "bytes": est.get("byte_estimate")})
    if kind == "STREAM_STATUS":
        status = trace.get("stream_status") or {}
        return Trace("stream_status", {"stream": (status.get("stream_descriptor") or {}).get("name"),
                                       "status": status.get("status")})
    return Trace(kind.lower() or "trace", {})


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _strings(v)}
    return set()


def _redactor(plan: JobPlan) -> Any:
    secrets = plan.secrets

    def apply(text: str) -> str:
        return redact(secrets.redact(text))

    return apply


__all__ = ["AirbyteEngine", "AirbyteReader", "ConnectorFailed", "PreparedRead", "configure_catalog", "read_messages"]
