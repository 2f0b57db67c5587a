"""The Singer engine (``engine: singer`` or ``meltano``): runs a real Singer tap the way Meltano does.

Capability-driven: ``--about --format json`` when the tap's capabilities are not declared,
``--discover`` once per settings hash (cached under ``$DATIVO_HOME/singer/catalogs``;
``--refresh-catalog`` forces it), the asset's selection written into the catalog's metadata and given
with ``--catalog`` or ``--properties`` as the tap declares, ``--state`` from the committed envelope.
The tap's stdout is read in blocks (``singer.reader``) into Arrow batches and checkpoints. Rows wait for the
tap's next STATE in the checkpoint buffer (``engines.common.checkpoints``); a tap that breaks the protocol or
exits non-zero fails the run with its last stderr lines, and nothing after its last STATE is committed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from dativo_ingest.engines.common.checkpoints import CheckpointBuffer
from dativo_ingest.engines.common.files import write_json_atomic
from dativo_ingest.engines.common.read_ahead import run_ahead
from dativo_ingest.engines.common.workdir import make_workdir
from dativo_ingest.engines.launchers.base import ConnectorProcess, Launcher
from dativo_ingest.engines.launchers.early import EarlyStart, NeedsConnector
from dativo_ingest.engines.launchers.local import LocalLauncher
from dativo_ingest.engines.launchers.venv import VenvLauncher
from dativo_ingest.engines.singer.catalog import (
    Selection,
    apply_metadata_rules,
    apply_select_rules,
    catalog_streams,
    select_streams,
    selected_stream_ids,
    stream_metadata,
    stream_properties,
)
from dativo_ingest.engines.singer.plugins import (
    TapPlugin,
    TapStream,
    resolve_tap,
    tap_config,
    tap_streams,
)
from dativo_ingest.engines.singer.protocol import SingerProtocolError, bookmarks
from dativo_ingest.engines.singer.reader import (
    ActivateVersionEvent,
    RecordsEvent,
    SchemaEvent,
    SingerReader,
    StateEvent,
)
from dativo_ingest.engines.singer.state import singer_state_from_envelope, singer_stream_state
from dativo_ingest.errors import ConfigError, SourceError
from dativo_ingest.logs import redact
from dativo_ingest.paths import dativo_home
from dativo_ingest.stream import Batch, Checkpoint, Message, Trace

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)

STDERR_LINES = 5
DEFAULT_CAPABILITIES = frozenset({"catalog", "discover", "state"})


def singer_home() -> Path:
    """Where the Singer engine keeps its caches (``$DATIVO_HOME/singer``)."""
    return dativo_home() / "singer"


def make_launcher(plugin: TapPlugin, project_root: Path) -> Launcher:
    """A venv launcher for a tap with a ``pip_url``; a local one for an executable on this machine."""
    if plugin.pip_url:
        return VenvLauncher(plugin.pip_url, plugin.executable)  # under paths.connectors_dir()
    path = Path(os.path.expanduser(plugin.executable))
    if not path.is_absolute() and (project_root / path).is_file():
        path = project_root / path
    if path.is_file() and path.suffix == ".py" and not os.access(path, os.X_OK):
        return LocalLauncher(path, prefix=[sys.executable])
    return LocalLauncher(path if path.is_file() else plugin.executable)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:60] or "tap"


def _identity(plugin: TapPlugin, launcher: Launcher) -> str:
    """What makes a tap the same tap: its package, or its executable file and that file's mtime."""
    if plugin.pip_url:
        return f"pip:{plugin.pip_url}:{plugin.executable}"
    argv = launcher.command([])
    exe = Path(argv[-1])
    stamp = exe.stat().st_mtime_ns if exe.is_file() else 0
    return f"local:{' '.join(argv)}:{stamp}"


def _tail(proc: ConnectorProcess) -> str:
    lines = [redact(line.strip()) for line in proc.stderr_tail(STDERR_LINES)]
    text = " | ".join(line for line in lines if line)
    return text[-800:] if text else "(no stderr output)"


class SingerTap:
    """One configured tap: about, discover, sync. Files it needs live in a private scratch folder."""

    def __init__(self, plugin: TapPlugin, config: dict[str, Any], *, project_root: Path) -> None:
        self.plugin = plugin
        self.launcher = make_launcher(plugin, project_root)
        self.config = config
        self.identity = _identity(self.plugin, self.launcher) if self.plugin.pip_url else ""
        self.workdir = make_workdir("singer")
        self.config_path = self.workdir / "config.json"
        write_json_atomic(self.config_path, self.config, private=True)  # the tap's config holds secrets
        #: whether the last ``discover`` ran the tap (False: it came from the cache)
        self.discovered_now: bool | None = None

    @classmethod
    def for_plan(cls, plan: JobPlan) -> SingerTap:
        """The tap of a job, with its settings."""
        plugin = resolve_tap(plan)
        return cls(plugin, tap_config(plan, plugin), project_root=plan.project_root)

    def close(self) -> None:
        """Remove the tap's private work folder."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SingerTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- invocations ---------------------------------------------------------------------------------------
    def _run_to_end(self, args: list[str], what: str) -> bytes:
        with self.launcher.start(args, workdir=self.workdir) as proc:
            out = b"".join(proc.lines())
            rc = proc.wait()
            if rc != 0:
                raise SourceError(f"Singer tap {self.plugin.name}: {what} failed with exit code {rc}: {_tail(proc)} "
                                  f"(check the tap's settings: engines/singer.yaml config mapping, the job's "
                                  f"source.connection and extractor.config)")
        return out

    def about(self, *, cached_only: bool = False) -> dict[str, Any]:
        """``--about --format json``, cached per tap package (or executable and mtime); ``cached_only``:
        ``NeedsConnector`` rather than install the tap or run it."""
        if cached_only and isinstance(self.launcher, VenvLauncher) and not self.launcher.is_installed():
            raise NeedsConnector("install")
        self.launcher.ensure_ready()
        ident = self.identity or _identity(self.plugin, self.launcher)
        digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
        cache = singer_home() / "about" / f"{_slug(self.plugin.name)}-{digest}.json"
        if cache.is_file():
            return orjson.loads(cache.read_bytes())
        if cached_only:
            raise NeedsConnector("--about")
        raw = self._run_to_end(["--about", "--format", "json"], "--about")
        try:
            about = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SourceError(f"Singer tap {self.plugin.name}: --about --format json did not print JSON "
                              f"(declare capabilities in engines/singer.yaml or extractor.capabilities)") from None
        write_json_atomic(cache, about)
        return about if isinstance(about, dict) else {}

    def capabilities(self, *, cached_only: bool = False) -> frozenset[str]:
        """The tap's capabilities: declared, else from ``--about``, else the usual three (``cached_only``: see
        ``about``)."""
        if self.plugin.capabilities is not None:
            return self.plugin.capabilities
        try:
            caps = self.about(cached_only=cached_only).get("capabilities")
        except SourceError as exc:
            log.warning("%s; assuming %s", exc, ", ".join(sorted(DEFAULT_CAPABILITIES)))
            return DEFAULT_CAPABILITIES
        return frozenset(str(c) for c in caps) if isinstance(caps, list) else DEFAULT_CAPABILITIES

    def catalog_cache_path(self) -> Path:
        """Where the discovered catalog of this tap and these settings is kept."""
        ident = self.identity or _identity(self.plugin, self.launcher)
        key = hashlib.sha256(orjson.dumps({"tap": ident, "config": self.config}, option=orjson.OPT_SORT_KEYS))
        return singer_home() / "catalogs" / f"{_slug(self.plugin.name)}-{key.hexdigest()[:20]}.json"

    def discover(self, *, refresh: bool = False, cached_only: bool = False) -> dict[str, Any]:
        """The tap's catalog: cached per (tap, settings) unless ``refresh`` (``cached_only``: ``NeedsConnector``
        rather than run ``--discover``)."""
        cache = self.catalog_cache_path()
        if cache.is_file() and not refresh:
            log.debug("singer: cached catalog %s", cache)
            self.discovered_now = False
            return orjson.loads(cache.read_bytes())
        if cached_only:
            raise NeedsConnector("--discover")
        self.discovered_now = True
        log.info("singer: %s --discover", self.plugin.name)
        raw = self._run_to_end(["--config", str(self.config_path), "--discover"], "--discover")
        try:
            catalog = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SourceError(f"Singer tap {self.plugin.name}: --discover did not print a JSON catalog "
                              f"(run it by hand to see what it prints)") from None
        if not isinstance(catalog, dict) or not isinstance(catalog.get("streams"), list):
            raise SourceError(f"Singer tap {self.plugin.name}: --discover printed no 'streams' list")
        write_json_atomic(cache, catalog)
        return catalog

    def start_sync(self, catalog: dict[str, Any] | None, state: dict[str, Any] | None,
                   capabilities: frozenset[str]) -> ConnectorProcess:
        """Start a sync with the catalog and state given as the tap's capabilities allow."""
        args = ["--config", str(self.config_path)]
        if catalog is not None:
            flag = "--catalog" if "catalog" in capabilities else "--properties" if "properties" in capabilities \
                else None
            if flag:
                path = write_json_atomic(self.workdir / "catalog.json", catalog, private=True)
                args += [flag, str(path)]
            else:
                log.warning("singer: %s declares neither 'catalog' nor 'properties': it syncs its default streams",
                            self.plugin.name)
        if state:
            if "state" in capabilities:
                path = write_json_atomic(self.workdir / "state.json", state, private=True)
                args += ["--state", str(path)]
            else:
                log.warning("singer: %s lacks the 'state' capability: it reads everything", self.plugin.name)
        log.info("singer: %s %s", self.plugin.name, " ".join(a if not a.startswith("/") else Path(a).name
                                                                for a in args))
        return self.launcher.start(args, workdir=self.workdir)


# -- selection -------------------------------------------------------------------------------------------------


def _missing(catalog: dict[str, Any], streams: list[TapStream], fields: list[str]) -> tuple[list[str], list[str]]:
    """Selected stream ids the catalog lacks, and asset fields its streams lack."""
    entries = catalog_streams(catalog)
    gone = [s.tap_stream_id for s in streams if s.tap_stream_id not in entries]
    lacking: list[str] = []
    for s in streams:
        entry = entries.get(s.tap_stream_id)
        if entry is not None:
            props = {p.lower() for p in stream_properties(entry)}
            lacking += [f for f in fields if f.lower() not in props and f not in lacking]
    return gone, lacking


def prepare_catalog(tap: SingerTap, plan: JobPlan, streams: list[TapStream] | None, capabilities: frozenset[str],
                    *, refresh: bool, cached_only: bool = False) -> tuple[dict[str, Any], list[TapStream]]:
    """Discover (cached), then select our streams and the asset's fields; returns the catalog and the streams
    (``cached_only``: ``NeedsConnector`` rather than run ``--discover``)."""
    plugin = tap.plugin
    fields = list(plan.asset.field_names)
    catalog = tap.discover(refresh=refresh, cached_only=cached_only)
    if streams is not None and not refresh and tap.discovered_now is False:
        gone, lacking = _missing(catalog, streams, fields)
        cache = tap.catalog_cache_path()
        asset_changed = cache.is_file() and cache.stat().st_mtime < plan.asset_path.stat().st_mtime
        if gone or (lacking and asset_changed):
            if cached_only:
                raise NeedsConnector("--discover")
            log.info("singer: the cached catalog lacks %s: discovering again", ", ".join(gone or lacking))
            catalog = tap.discover(refresh=True)
    if streams is not None:
        _, lacking = _missing(catalog, streams, fields)
        if lacking:
            log.warning("singer: the catalog of %s has no field(s) %s of the asset: the tap may not send them "
                        "(run with --refresh-catalog if the source changed)", plugin.name, ", ".join(lacking))
    if plugin.select is not None:
        catalog = apply_select_rules(catalog, plugin.select)
        if plugin.metadata:
            catalog = apply_metadata_rules(catalog, plugin.metadata)
        entries = catalog_streams(catalog)
        chosen = []
        for sid in selected_stream_ids(catalog):
            top = stream_metadata(entries[sid])
            chosen.append(TapStream(sid, sid, top.get("replication-method"), top.get("replication-key")))
        if not chosen:
            raise ConfigError(plan.job_path, f"extractor.select matches no stream of {plugin.name} "
                              f"(streams: {', '.join(sorted(entries)) or 'none'})", field="extractor.select",
                              fix="use stream.property patterns naming discovered streams")
        return catalog, chosen
    assert streams is not None
    entries = catalog_streams(catalog)
    gone, _ = _missing(catalog, streams, [])
    if gone:
        raise SourceError(f"Singer tap {plugin.name} has no stream {', '.join(repr(g) for g in gone)} "
                          f"(discovered: {', '.join(sorted(entries)[:20]) or 'none'}; check source.tables / "
                          f"source.files, and that the tap's settings reach them)")
    selections = [Selection(s.tap_stream_id, fields, s.replication_method, s.replication_key) for s in streams]
    catalog = select_streams(catalog, selections,
                             legacy_schema_flags="properties" in capabilities and "catalog" not in capabilities)
    if plugin.metadata:
        catalog = apply_metadata_rules(catalog, plugin.metadata)
    return catalog, streams


# -- the engine ------------------------------------------------------------------------------------------------


class SingerEngine:
    """Real Singer taps, run the way Meltano runs them (see the module docstring)."""

    name = "singer"

    def preflight(self, plan: JobPlan) -> None:
        """The job's tap exists (``engines/singer.yaml`` or its ``extractor:``), its streams and settings build
        from the job, and, when the tap is installed and describes its settings (``--about``), every required
        setting is given. ``check`` installs nothing: a tap not installed yet is a note ("installs … on first
        run")."""
        plugin = resolve_tap(plan)
        tap_streams(plan, plugin)
        config = tap_config(plan, plugin)
        launcher = make_launcher(plugin, plan.project_root)
        if isinstance(launcher, VenvLauncher) and not launcher.is_installed():
            plan.notes.append(f"installs {plugin.pip_url} on first run")
            return
        if plugin.capabilities is not None and "about" not in plugin.capabilities:
            return
        with SingerTap(plugin, config, project_root=plan.project_root) as tap:
            try:
                settings = tap.about().get("settings")
            except SourceError:
                return  # a tap that cannot describe itself is checked by its run
        missing = [k for k in (settings or {}).get("required") or [] if config.get(k) in (None, "")] \
            if isinstance(settings, dict) else []
        if missing:
            raise ConfigError(plan.job_path, f"the Singer tap {plugin.name} needs the setting(s) "
                              f"{', '.join(missing)}, which the job does not give", field="source.connection",
                              fix="set them in source.connection (mapped by engines/singer.yaml) or in "
                                  "extractor.config")

    def read(self, plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
        """Run the tap's sync and yield its records as batches, its bookmarks as checkpoints after the rows they
        cover (see the module docstring)."""
        tap = SingerTap.for_plan(plan)
        try:
            sync = PreparedSync(tap, plan)
            proc = sync.start(sync.state_for(state))
            yield from sync.messages(state, proc)
        finally:
            tap.close()

    def start_early(self, plan: JobPlan, guess: StateEnvelope) -> EarlyStart | None:
        """Start the sync with the state ``guess`` gives (the local mirror's) before the committed state is known
        (``engines.launchers.early``); None when that would run the tap for something else first (``--about``,
        ``--discover``, an install)."""
        plugin = resolve_tap(plan)
        launcher = make_launcher(plugin, plan.project_root)
        if isinstance(launcher, VenvLauncher) and not launcher.is_installed():
            return None
        tap = SingerTap(plugin, tap_config(plan, plugin), project_root=plan.project_root)
        try:
            sync = PreparedSync(tap, plan, cached_only=True)
            if sync.log_based():
                raise NeedsConnector("LOG_BASED: the tap may acknowledge its log position as it starts")
            given = sync.state_for(guess)
            process = sync.start(given)
        except NeedsConnector:
            tap.close()
            return None
        except BaseException:
            tap.close()
            raise
        return EarlyStart(f"singer {plugin.name}", process, given, translate=sync.state_for, start=sync.start,
                          consume=sync.messages, cleanup=tap.close)


class PreparedSync:
    """Everything a sync needs but the state: the tap's capabilities, its catalog with our selection, our streams.
    ``start(state)`` starts it, ``messages(envelope, process)`` reads it. ``cached_only``: ``NeedsConnector``
    rather than run the tap for ``--about`` or ``--discover``."""

    def __init__(self, tap: SingerTap, plan: JobPlan, *, cached_only: bool = False) -> None:
        self.tap = tap
        self.plan = plan
        plugin = tap.plugin
        self.capabilities = tap.capabilities(cached_only=cached_only)
        streams = tap_streams(plan, plugin)
        refresh = bool(plan.engine_options.get("refresh_catalog"))
        if refresh and cached_only:
            raise NeedsConnector("--discover (--refresh-catalog)")
        self.catalog: dict[str, Any] | None = None
        if "discover" in self.capabilities:
            self.catalog, streams = prepare_catalog(tap, plan, streams, self.capabilities, refresh=refresh,
                                                    cached_only=cached_only)
        elif streams is None:
            raise ConfigError(plan.job_path, f"extractor.select needs a tap that can --discover ({plugin.name} "
                              f"does not declare 'discover')", field="extractor.select", fix="remove select")
        assert streams is not None
        self.streams = streams
        ours = {s.tap_stream_id: s for s in streams}
        if self.catalog is not None:  # legacy taps name records by the catalog's ``stream``, not its tap_stream_id
            for sid, entry in catalog_streams(self.catalog).items():
                if sid in ours and entry.get("stream"):
                    ours.setdefault(str(entry["stream"]), ours[sid])
        self.ours = ours

    def log_based(self) -> bool:
        """Whether a selected stream replicates from the database's log (``LOG_BASED``, in the job or the catalog)."""
        methods = {str(s.replication_method or "").upper() for s in self.streams}
        if self.catalog is not None:
            entries = catalog_streams(self.catalog)
            for s in self.streams:
                for item in (entries.get(s.tap_stream_id) or {}).get("metadata") or []:  # read only: it goes to the tap
                    if isinstance(item, dict) and not item.get("breadcrumb") and isinstance(item.get("metadata"), dict):
                        methods.add(str(item["metadata"].get("replication-method") or "").upper())
        return "LOG_BASED" in methods

    def state_for(self, envelope: StateEnvelope) -> dict[str, Any]:
        """The Singer state the tap is given for an envelope (``{}``: none)."""
        if self.plan.read.full_refresh:
            return {}
        return singer_state_from_envelope(envelope, {s.stream: (s.tap_stream_id, s.replication_key)
                                                     for s in self.streams})

    def start(self, state: dict[str, Any]) -> ConnectorProcess:
        """Start the sync with ``state``."""
        return self.tap.start_sync(self.catalog, state, self.capabilities)

    def messages(self, envelope: StateEnvelope, proc: ConnectorProcess) -> Iterator[Message]:
        """The normalised messages of the started sync ``proc`` (``envelope``: the state it was started from)."""
        plugin, ours = self.tap.plugin, self.ours
        fields = list(self.plan.asset.field_names)
        reader = SingerReader(columns=lambda stream: fields if stream in ours else [])
        warned: set[str] = set()
        #: the tap's bookmarks as last committed or yielded: an unchanged one needs no checkpoint (nor a commit)
        last = {s.stream: (envelope.streams.get(s.stream) or {}).get("singer") for s in self.streams}
        #: rows after the tap's last STATE wait here; a STATE covers every stream (it is the tap's whole state)
        held = CheckpointBuffer(covers_all=True)
        try:
            try:
                for event in run_ahead(reader.read_blocks(proc.blocks(), flush_at_end=False), stop=proc.kill,
                                       name="singer-read-ahead"):
                    if isinstance(event, RecordsEvent):
                        yield from _hold(held, event, ours, plugin)
                        continue
                    if isinstance(event, StateEvent):
                        yield from held.covered_all()
                    yield from _translate(event, ours, plugin, warned, last)
            except SingerProtocolError as exc:
                proc.kill()
                raise _failure(f"Singer tap {plugin.name} broke the Singer protocol at {exc}", not held.uncovered,
                               " (fix the tap: stdout must carry only Singer messages, logs go to stderr)") from None
            rc = proc.wait()
            if rc != 0:
                raise _failure(f"Singer tap {plugin.name} exited with code {rc}: {_tail(proc)}", not held.uncovered,
                               "")
            for event in reader.flush():  # records after the last STATE: kept only because the tap ended cleanly
                yield from _hold(held, event, ours, plugin)
            yield from held.covered_all()
            log.info("singer: %s done: %s record(s), %d state message(s)", plugin.name,
                     sum(reader.stats.records.values()), reader.stats.states)
        finally:
            proc.kill()


def _hold(held: CheckpointBuffer, event: RecordsEvent, ours: dict[str, TapStream], plugin: TapPlugin
          ) -> Iterator[Batch]:
    """The records of one of our streams wait for the tap's next STATE (those of other streams are dropped)."""
    target = ours.get(event.stream)
    if target is not None:
        yield from held.hold(Batch(target.stream, event.batch, origin=f"{plugin.name}:{event.stream}"))


def _failure(message: str, covered: bool, fix: str) -> SourceError:
    """The run fails; the runner commits the rows of the tap's last STATE first when every row sent is covered."""
    error = SourceError(f"{message} — the run fails; nothing after the tap's last STATE is committed{fix}")
    error.commit_checkpointed = covered  # type: ignore[attr-defined]
    return error


def _translate(event: Any, ours: dict[str, TapStream], plugin: TapPlugin, warned: set[str],
               last: dict[str, Any]) -> Iterator[Message]:
    if isinstance(event, StateEvent):
        if event.value and "bookmarks" not in event.value and "state without bookmarks" not in warned:
            warned.add("state without bookmarks")
            log.warning("singer: %s sends STATE without 'bookmarks': it is not kept, the next run starts over",
                        plugin.name)
        for sid, bookmark in bookmarks(event.value).items():
            target = ours.get(sid)
            if target is None:
                continue
            state = singer_stream_state(target.tap_stream_id, bookmark)
            if last.get(target.stream) != state["singer"]:
                last[target.stream] = state["singer"]
                yield Checkpoint(target.stream, state, dialect="singer")
    elif isinstance(event, ActivateVersionEvent):
        target = ours.get(event.stream)
        # a full-table replace; some taps (pipelinewise-tap-mysql) send it on every incremental sync too, where it
        # must not drop the rows of earlier runs
        if target is not None and target.replication_method != "INCREMENTAL":
            yield Trace("activate_version", {"stream": target.stream, "version": event.version})
    elif isinstance(event, SchemaEvent):
        name = event.schema.stream
        if name not in ours and name not in warned:
            warned.add(name)
            log.warning("singer: %s sends stream '%s', which the job did not select: its records are skipped",
                        plugin.name, name)

