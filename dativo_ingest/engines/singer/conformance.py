"""``dativo_ingest test-connector --engine singer``: about → discover → sync → sync again with the state.

The report names records that do not match their stream's SCHEMA, lines that are not Singer messages,
RECORDs before their SCHEMA, incremental streams that never emit a STATE bookmark, and a state that
does not resume (the second sync returns records older than the bookmark it was given).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from dativo_ingest.engines.airbyte.conformance import (
    MAX_EXAMPLES,
    MAX_VALIDATED,
    Report,
    StreamStats,
    _describe,
    load_config_file,
)
from dativo_ingest.engines.singer.catalog import (
    Selection,
    catalog_streams,
    select_streams,
    stream_metadata,
)
from dativo_ingest.engines.singer.plugins import TapPlugin, _capabilities, load_plugins
from dativo_ingest.engines.singer.protocol import (
    bookmarks,
    snippet,
)
from dativo_ingest.errors import ConfigError, DativoError
from dativo_ingest.state.cursor import cursor_after


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
                       capabilities=_capabilities(entry.get("capabilities"), path, f"taps.{connector}.capabilities"),
                       origin=path)
    return plugin


def singer_report(connector: str, *, project_root: Path, config_path: Path | None, streams: list[str] | None,
                  options: dict[str, Any]) -> Report:
    from dativo_ingest.engines.singer.engine import SingerTap

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
        from dativo_ingest.engines.airbyte.conformance import _schema_error

        bad = [f"{sid}: {err}" for sid, e in entries.items() if (err := _schema_error(e.get("schema")))]
        report.add("discover", bool(entries) and not bad,
                   f"{len(entries)} stream(s): {', '.join(entries)}" if not bad
                   else f"stream schemas that are not valid JSON schemas: {'; '.join(bad)}")
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


def _sync(tap: Any, catalog: dict[str, Any], capabilities: frozenset[str], report: Report,
          state: dict[str, Any] | None) -> dict[str, Any] | None:
    """One sync; counts into ``report``; returns the last STATE value."""
    from jsonschema import Draft7Validator

    first = state is None
    what = "sync" if first else "resume"
    bookmark_values = {sid: b.get("replication_key_value") for sid, b in bookmarks(state or {}).items()}
    if not first:
        for stats in report.streams.values():
            stats.resumed_records = 0
    validators: dict[str, Any] = {}
    last_state: dict[str, Any] | None = None
    problems: list[str] = []
    unknown: set[str] = set()
    with tap.start_sync(catalog, copy.deepcopy(state), capabilities) as proc:
        for n, raw in enumerate(proc.lines(), start=1):
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                problems.append(f"line {n} is not JSON: {snippet(raw)!r}")
                continue
            kind = str(message.get("type") or "").upper() if isinstance(message, dict) else ""
            stream = str(message.get("stream") or "") if isinstance(message, dict) else ""
            if kind == "SCHEMA":
                schema = message.get("schema")
                validators[stream] = Draft7Validator(schema) if isinstance(schema, dict) else None
                if stream not in report.streams:
                    unknown.add(stream)
            elif kind == "RECORD":
                stats = report.streams.get(stream)
                if stream not in validators:
                    problems.append(f"line {n}: RECORD for stream '{stream}' before its SCHEMA")
                    continue
                if stats is None:
                    unknown.add(stream)
                    continue
                record = message.get("record") if isinstance(message.get("record"), dict) else {}
                value = record.get(stats.cursor) if stats.cursor else None
                if first:
                    stats.records += 1
                    validator = validators.get(stream)
                    if validator is not None and stats.validated < MAX_VALIDATED:
                        stats.validated += 1
                        errors = list(validator.iter_errors(record))
                        if errors:
                            stats.invalid += 1
                            if len(stats.examples) < MAX_EXAMPLES:
                                stats.examples.append(_describe(errors[0]))
                    if value is not None and (stats.max_cursor is None or cursor_after(value, stats.max_cursor)):
                        stats.max_cursor = value
                else:
                    stats.resumed_records = (stats.resumed_records or 0) + 1
                    saved = bookmark_values.get(stream)
                    if value is not None and saved is not None and cursor_after(saved, value):
                        stats.older_than_state += 1
            elif kind == "STATE":
                value = message.get("value")
                if not isinstance(value, dict):
                    problems.append(f"line {n}: STATE without a 'value' object")
                    continue
                last_state = value
                if first:
                    for sid, mark in bookmarks(value).items():
                        if sid in report.streams and mark:
                            report.streams[sid].states += 1
            elif kind not in ("ACTIVATE_VERSION", "BATCH"):
                problems.append(f"line {n}: unknown message type {kind or '(none)'!r}")
        rc = proc.wait()
        tail = " | ".join(proc.stderr_tail(3))
    if rc != 0:
        report.add(what, False, f"the tap exited with code {rc}: {tail or '(no stderr)'}")
    if problems:
        report.add("protocol", False, f"{len(problems)} problem(s) on stdout (first: {problems[0]})")
    if unknown:
        report.add("protocol", False, f"messages of streams that were not selected: {', '.join(sorted(unknown))}")
    if first:
        total = sum(s.records for s in report.streams.values())
        report.add("sync", rc == 0, f"{total} records from {len(report.streams)} stream(s)")
        bad = {n: s for n, s in report.streams.items() if s.invalid}
        for name, stats in bad.items():
            report.add("records", False, f"stream '{name}': {stats.invalid} of {stats.validated} checked records do "
                                         f"not match its SCHEMA (first: {'; '.join(stats.examples)})")
        if not bad and total:
            report.add("records", True, "every checked record matches its stream's SCHEMA")
    return last_state
