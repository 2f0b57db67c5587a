"""``dativo_ingest test-connector --engine singer``: about → discover → sync → sync again with the state (the
report: ``engines.common.conformance``).

Both syncs go through the engine's own reader (``SingerReader``: the same fast record path as ``run``). The report
names records that do not match their stream's SCHEMA, lines that are not Singer messages, RECORDs before their
SCHEMA, incremental streams that never emit a STATE bookmark, and a state that does not resume (the second sync
returns records older than the bookmark it was given).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dativo_ingest.engines.common.conformance import (
    RecordChecks,
    Report,
    StreamStats,
    load_config_file,
)
from dativo_ingest.engines.common.read_ahead import run_ahead
from dativo_ingest.engines.singer.catalog import (
    Selection,
    catalog_streams,
    select_streams,
    stream_metadata,
)
from dativo_ingest.engines.singer.engine import SingerTap
from dativo_ingest.engines.singer.plugins import TapPlugin, load_plugins, parse_capabilities
from dativo_ingest.engines.singer.protocol import SingerProtocolError, bookmarks
from dativo_ingest.engines.singer.reader import RecordsEvent, SchemaEvent, SingerReader, StateEvent
from dativo_ingest.engines.singer.records import record_of
from dativo_ingest.errors import ConfigError, DativoError


def tap_plugin(connector: str, project_root: Path, options: dict[str, Any]) -> TapPlugin:
    """The tap named ``connector`` in engines/singer.yaml (by connector or tap name), or a local executable."""
    manifest = load_plugins(project_root)
    taps, path = manifest.entries, manifest.origin(connector)
    entry = taps.get(connector) or next((t for t in taps.values() if t.get("name") == connector), None)
    executable = options.get("executable")
    if entry is None and not executable:
        raise ConfigError(path, f"no tap '{connector}' (taps: {', '.join(sorted(taps)) or 'none'})",
                          field="--connector", fix="name a tap of engines/singer.yaml, or give --executable FILE")
    entry = dict(entry or {})
    plugin = TapPlugin(name=str(entry.get("name") or connector),
                       executable=str(executable or entry.get("executable") or connector),
                       pip_url=None if executable else entry.get("pip_url"),
                       capabilities=parse_capabilities(entry.get("capabilities"), path,
                                                       f"taps.{connector}.capabilities"),
                       origin=path)
    return plugin


def singer_report(connector: str, *, project_root: Path, config_path: Path | None, streams: list[str] | None,
                  options: dict[str, Any]) -> Report:
    """Run the Singer tap ``connector`` (``engines/singer.yaml``, or ``options["executable"]``) with the settings of
    ``config_path`` through about, discover and two syncs, and report what does not conform."""
    report = Report("singer", connector)
    plugin = tap_plugin(connector, project_root, options)
    if config_path is None:
        raise ConfigError(None, "a Singer tap needs its settings", field="--config",
                          fix="give --config FILE with the tap's own settings (JSON or YAML)")
    config = load_config_file(config_path)
    with SingerTap(plugin, config, project_root=project_root) as tap:
        # about
        try:
            about = tap.about()
            caps = about.get("capabilities")
            report.add("about", isinstance(caps, list), f"capabilities: {', '.join(map(str, caps))}"
                       if isinstance(caps, list) else "--about --format json has no 'capabilities' list")
        except DativoError as exc:
            report.add("about", None, f"no --about ({exc}); using the declared capabilities")
        capabilities = tap.capabilities()
        # discover
        try:
            catalog = tap.discover(refresh=True)
        except DativoError as exc:
            report.add("discover", False, str(exc))
            return report
        entries = catalog_streams(catalog)
        report.judge_discover({sid: e.get("schema") for sid, e in entries.items()})
        if not entries:
            return report
        chosen = streams or list(entries)
        missing = [s for s in chosen if s not in entries]
        if missing:
            report.add("discover", False, f"--streams names unknown stream(s): {', '.join(missing)}")
            return report
        selections = []
        for sid in chosen:
            top = stream_metadata(entries[sid])
            keys = top.get("valid-replication-keys") or ([entries[sid]["replication_key"]]
                                                         if entries[sid].get("replication_key") else [])
            forced = str(top.get("forced-replication-method") or "")
            incremental = bool(keys) and forced != "FULL_TABLE"
            selections.append(Selection(sid, None, "INCREMENTAL" if incremental else "FULL_TABLE",
                                        str(keys[0]) if incremental else None))
            report.streams[sid] = StreamStats(sync_mode="incremental" if incremental else "full_table",
                                              cursor=str(keys[0]) if incremental else None)
        selected = select_streams(catalog, selections, legacy_schema_flags="catalog" not in capabilities)
        # sync, then sync again from the state it left
        state = _sync(tap, selected, capabilities, report, None)
        incremental = [n for n, s in report.streams.items() if s.sync_mode == "incremental"]
        for name in incremental:
            stats = report.streams[name]
            if stats.records and not stats.states:
                report.add("state", False, f"stream '{name}' is incremental, sent {stats.records} records and no "
                                           f"STATE bookmark for it")
        if incremental and state and report.ok:
            _sync(tap, selected, capabilities, report, state)
            report.judge_resume(incremental, older="the sync from the state returned {n} record(s) older than its "
                                                   "bookmark", passed="a second sync with the state returned no "
                                                                      "older records")
        elif incremental and not state and report.ok:
            report.add("resume", False, "incremental streams but no STATE to resume from")
    return report


def _sync(tap: SingerTap, catalog: dict[str, Any], capabilities: frozenset[str], report: Report,
          state: dict[str, Any] | None) -> dict[str, Any] | None:
    """One sync through the engine's reader; counts into ``report``; returns the last STATE value."""
    first = state is None
    what = "sync" if first else "resume"
    saved = {sid: b.get("replication_key_value") for sid, b in bookmarks(state or {}).items()}
    if not first:
        for stats in report.streams.values():
            stats.resumed_records = 0
    checks = RecordChecks(report, record_of, lambda stream: reader.schemas[stream].json_schema)
    reader = SingerReader(columns=lambda stream: None if stream in report.streams else [],
                          observe=checks.lines if first else None)
    last_state: dict[str, Any] | None = None
    problems: list[str] = []
    unknown: set[str] = set()
    with tap.start_sync(catalog, copy.deepcopy(state), capabilities) as proc:
        try:
            for event in run_ahead(reader.read_blocks(proc.blocks()), stop=proc.kill, name="singer-conformance"):
                if isinstance(event, RecordsEvent):
                    report.streams[event.stream].count(event.batch, first=first, saved=saved.get(event.stream))
                elif isinstance(event, SchemaEvent):
                    if event.schema.stream not in report.streams:
                        unknown.add(event.schema.stream)
                elif isinstance(event, StateEvent):
                    last_state = event.value
                    for sid, mark in bookmarks(event.value).items():
                        if first and sid in report.streams and mark:
                            report.streams[sid].states += 1
        except SingerProtocolError as exc:
            problems.append(str(exc))
            proc.kill()
        rc = proc.wait()
        tail = " | ".join(proc.stderr_tail(3))
    problems += [f"unknown message type {kind!r} ({n} line(s))" for kind, n in reader.stats.ignored_types.items()
                 if kind not in ("ACTIVATE_VERSION", "BATCH")]
    unknown |= {s for s in reader.stats.records if s not in report.streams}
    if rc != 0:
        report.add(what, False, f"the tap exited with code {rc}: {tail or '(no stderr)'}")
    if problems:
        report.add("protocol", False, f"{len(problems)} problem(s) on stdout (first: {problems[0]})")
    if unknown:
        report.add("protocol", False, f"messages of streams that were not selected: {', '.join(sorted(unknown))}")
    if first:
        report.judge_read("sync", rc == 0, "SCHEMA")
    return last_state


__all__ = ["singer_report", "tap_plugin"]
