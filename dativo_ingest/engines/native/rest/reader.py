"""Read the job's streams page by page; pages gathered into Arrow batches of about 10 000 rows (or the job's
``target.commit_every_rows``), a checkpoint after each.

State of a stream (``streams.<stream>`` of the envelope, committed with the rows):

- ``cursor: {field, value}`` — the largest cursor value of the last complete read (a parentless stream);
- ``partitions: {parent key: {field, value}}`` — the same per parent record (child streams: one cursor per
  Slack channel, say);
- ``rest`` — a read in progress: ``page`` (the paginator's position of the next request), ``high_water``
  (the largest cursor value read so far), and for child streams ``partition`` (the parent in progress) and
  ``done`` (parents finished in this read). Null once the read completes.

A checkpoint follows every batch, naming the page after it, so a run killed mid-pagination resumes at the page
after its last commit with the same lower bound: nothing lost, nothing read twice. The lower bound of a read
(``since``) is the committed cursor minus the job's lookback (or the stream's ``initial`` value); it goes into
the request (``incremental.param`` or ``{cursor}``) and also filters the records here, for APIs that ignore it.

A full refresh (``write_mode: overwrite``, strategy ``none``/``full``) commits a stream whole instead (no
checkpoint before its end): a resumed run would replace what the killed one committed. The batches of an
incremental stream say the source applied the cursor (``Batch.cursor_applied``): the runner does not filter
them again (its filter would drop the rest of a newest-first listing) and takes the position from the
checkpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.engines.native.rest.client import ApiClient, Page
from dativo_ingest.engines.native.rest.paging import Paginator, Position
from dativo_ingest.engines.native.rest.records import PageDecoder, RecordsError, output_fields
from dativo_ingest.engines.native.rest.source import RestSource
from dativo_ingest.engines.native.rest.spec import PLACEHOLDER, IncrementalSpec, StreamSpec
from dativo_ingest.engines.native.rest.templates import dig
from dativo_ingest.errors import ConfigError, SourceError
from dativo_ingest.state.cursor import cursor_after, cursor_key, cursor_to_text
from dativo_ingest.stream import Batch, Checkpoint, Message

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan
    from dativo_ingest.state.envelope import StateEnvelope

log = logging.getLogger(__name__)


#: pages are gathered into batches of about this many rows (one stage call, one checkpoint per batch)
BATCH_ROWS = 10_000


@dataclass
class ReadOptions:
    """How the job reads: which streams, with what lower bound, and whether it may commit mid-stream."""

    streams: list[str]
    incremental: bool
    lookback_seconds: int
    resumable: bool
    #: rows gathered before a batch (and a checkpoint) goes out; at most the job's commit_every_rows
    batch_rows: int = BATCH_ROWS


class _Pending:
    """Pages of one stream gathered into one batch (consecutive pages of the same column types)."""

    def __init__(self, stream: str, limit: int, cursor_applied: bool = False) -> None:
        self.stream = stream
        self.cursor_applied = cursor_applied
        self.limit = max(1, limit)
        self.batches: list[pa.RecordBatch] = []
        self.rows = 0
        self.origin = ""

    @property
    def full(self) -> bool:
        return self.rows >= self.limit

    def add(self, batch: pa.RecordBatch, origin: str) -> Iterator[Message]:
        if self.batches and batch.schema != self.batches[0].schema:
            yield from self.flush()  # a column read another way on this page: not one Arrow table
        self.batches.append(batch)
        self.rows += batch.num_rows
        self.origin = origin

    def flush(self) -> Iterator[Message]:
        if not self.batches:
            return
        batches = self.batches if len(self.batches) == 1 else \
            pa.Table.from_batches(self.batches).combine_chunks().to_batches()
        self.batches, self.rows = [], 0
        for data in batches:
            yield Batch(self.stream, data, origin=self.origin, cursor_applied=self.cursor_applied)


def read_options(plan: JobPlan, source: RestSource) -> ReadOptions:
    """The streams (``source.objects``, else the asset's object) and how they are read; ``ConfigError`` when the
    job's ``cursor_field`` disagrees with the recipe."""
    names = [str(o) for o in plan.source.objects or [plan.default_stream]]
    for name in names:
        source.stream(name)
    full = plan.read.full_refresh
    job_cursor = plan.source.incremental.cursor_field if plan.source.incremental else None
    if job_cursor and not full:
        for name in names:
            stream = source.stream(name)
            if stream.parent is not None:
                raise ConfigError(plan.job_path, f"stream '{name}' keeps one cursor per {stream.parent.stream} "
                                  "record; a single job-wide cursor would skip records",
                                  field="source.incremental.cursor_field",
                                  fix=f"remove it: {source.recipe} names the stream's cursor")
            if stream.incremental is not None and stream.incremental.cursor_field != job_cursor:
                raise ConfigError(plan.job_path, f"'{job_cursor}' is not the cursor of stream '{name}' "
                                  f"('{stream.incremental.cursor_field}' in {source.recipe})",
                                  field="source.incremental.cursor_field",
                                  fix=f"use {stream.incremental.cursor_field} or remove it")
    names_in_asset = set(plan.asset.field_names)
    for name in names:
        stream = source.stream(name)
        if stream.incremental is not None and stream.incremental.cursor_field not in names_in_asset:
            raise ConfigError(plan.asset_path, f"has no field '{stream.incremental.cursor_field}', the cursor of "
                              f"stream '{name}' in {source.recipe}", field="schema",
                              fix=f"add {stream.incremental.cursor_field} to the asset's schema")
    commit_every = plan.target.commit_every_rows or 0
    return ReadOptions(streams=names, incremental=not full, lookback_seconds=plan.read.lookback_seconds,
                       resumable=not full,
                       batch_rows=min(BATCH_ROWS, commit_every) if commit_every > 0 else BATCH_ROWS)


def read_rest(plan: JobPlan, state: StateEnvelope) -> Iterator[Message]:
    """The native engine's read of a REST source (the job's recipe has an ``api:`` section)."""
    source = RestSource.from_plan(plan)
    options = read_options(plan, source)
    asset_fields = [(f.name, f.type) for f in plan.asset.fields]
    with source.client() as client:
        for name in options.streams:
            reader = StreamReader(source, client, name, asset_fields, options)
            yield from reader.read(state.stream(name))


class StreamReader:
    """Reads one stream (and its parent's records, for a child stream)."""

    def __init__(self, source: RestSource, client: ApiClient, name: str, asset_fields: list[tuple[str, str]],
                 options: ReadOptions) -> None:
        self.source = source
        self.client = client
        self.name = name
        self.spec = source.stream(name)
        self.options = options
        self.decoder = PageDecoder(output_fields(asset_fields, self.spec.fields))
        self.paginator = Paginator(source.spec.paginator_of(self.spec), credential_params=source.credential_params())
        self.incremental: IncrementalSpec | None = self.spec.incremental if options.incremental else None
        #: requests this reader made and records it read (for test-connector and the bench)
        self.pages = 0
        self.records = 0

    # -- the stream ------------------------------------------------------------------------------------------
    def read(self, committed: dict[str, Any]) -> Iterator[Message]:
        """Batches and checkpoints of the whole stream, starting from its committed state."""
        state = dict(committed)
        progress = state.get("rest") if self.options.resumable and isinstance(state.get("rest"), dict) else None
        if self.spec.parent is None:
            yield from self._read_single(state, progress)
        else:
            yield from self._read_children(state, progress)

    def _read_single(self, state: dict[str, Any], progress: dict[str, Any] | None) -> Iterator[Message]:
        committed = self._committed(state.get("cursor"))
        position = progress.get("page") if progress else None
        high = progress.get("high_water") if progress else None
        if position is not None and not self.paginator.valid(position):
            log.warning("stream %s: the read in progress was paged another way (the recipe changed); reading "
                        "the stream again from its cursor", self.name)
            position, high = None, None
        if progress and position is not None:
            log.info("stream %s: resuming a read at %s", self.name, position)

        def checkpoint(next_position: Position, high_water: Any) -> Checkpoint:
            return Checkpoint(self.name, {**state, "rest": {"page": next_position, "high_water": high_water}})

        high = yield from self._pages({}, committed, position or {}, high, checkpoint)
        final = {**state, "rest": None}
        if self.incremental is not None:
            value = high if cursor_after(high, committed) else committed
            if value is not None:
                final["cursor"] = {"field": self.incremental.cursor_field, "value": value}
        yield Checkpoint(self.name, final)

    def _read_children(self, state: dict[str, Any], progress: dict[str, Any] | None) -> Iterator[Message]:
        assert self.spec.parent is not None
        partitions: dict[str, Any] = dict(state.get("partitions") or {})
        done: list[str] = list(progress.get("done") or []) if progress else []
        for parent in self._parents():
            key_value = dig(parent, self.spec.parent.key)
            if key_value is None:
                log.warning("stream %s: a %s record has no '%s'; skipped", self.name, self.spec.parent.stream,
                            self.spec.parent.key)
                continue
            key = str(key_value)
            if key in done:
                continue
            committed = self._committed(partitions.get(key))
            position, high = None, None
            if progress and progress.get("partition") == key:
                position, high = progress.get("page"), progress.get("high_water")
                if position is not None and not self.paginator.valid(position):
                    position, high = None, None

            def checkpoint(next_position: Position, high_water: Any, key: str = key) -> Checkpoint:
                rest = {"done": list(done), "partition": key, "page": next_position, "high_water": high_water}
                return Checkpoint(self.name, {**state, "partitions": dict(partitions), "rest": rest})

            high = yield from self._pages(parent, committed, position or {}, high, checkpoint)
            if self.incremental is not None:
                value = high if cursor_after(high, committed) else committed
                if value is not None:
                    partitions[key] = {"field": self.incremental.cursor_field, "value": value}
            done.append(key)
            if self.options.resumable:
                yield Checkpoint(self.name, {**state, "partitions": dict(partitions),
                                             "rest": {"done": list(done), "partition": None, "page": None,
                                                      "high_water": None}})
            progress = None
        yield Checkpoint(self.name, {**state, "partitions": partitions, "rest": None})

    def _parents(self) -> Iterator[dict[str, Any]]:
        """Every record of the parent stream (read whole, not kept in state)."""
        assert self.spec.parent is not None
        parent_name = self.spec.parent.stream
        spec = self.source.stream(parent_name, where=f"api.streams.{self.name}.parent.stream")
        paginator = Paginator(self.source.spec.paginator_of(spec), credential_params=self.source.credential_params())
        position: Position = {}
        while True:
            page, records = self._request(parent_name, spec, paginator, {}, None, position)
            for record in records:
                if isinstance(record, dict):
                    yield record
            following = paginator.next(parent_name, position, page, records)
            if following is None:
                return
            position = following

    def first_page(self) -> Page:
        """The stream's first request, with the start value of a first run (what ``check`` asks)."""
        page, _ = self._request(self.name, self.spec, self.paginator, {}, self._since(None, {}), {})
        return page

    # -- pages -----------------------------------------------------------------------------------------------
    def _committed(self, entry: Any) -> str | None:
        if self.incremental is None or not isinstance(entry, dict):
            return None
        return entry.get("value") if entry.get("field") == self.incremental.cursor_field else None

    def _since(self, committed: str | None, parent: dict[str, Any]) -> Any:
        """The read's lower bound: the committed cursor minus the lookback, else the stream's initial value."""
        if self.incremental is None:
            return None
        if committed is not None:
            value = _comparable(committed)
            if isinstance(value, datetime) and self.options.lookback_seconds:
                return value - timedelta(seconds=self.options.lookback_seconds)
            return value
        if self.incremental.initial:
            initial = self.source.render(self.incremental.initial, {"parent": parent})
            if initial not in (None, ""):
                return _comparable(initial)
        return None

    def _pages(self, parent: dict[str, Any], committed: str | None, position: Position, high: Any,
               checkpoint: Any) -> Iterator[Message]:
        since = self._since(committed, parent)
        cursor_field = self.incremental.cursor_field if self.incremental is not None else None
        pending = _Pending(self.name, self.options.batch_rows, cursor_applied=self.incremental is not None)
        while True:
            page, records = self._request(self.name, self.spec, self.paginator, parent, since, position)
            self.pages += 1
            context = {"connection": self.source.connection, "parent": parent}
            try:
                batch = self.decoder.decode(records, context)
            except RecordsError as exc:
                raise SourceError(f"stream '{self.name}': {page.path}: {exc} "
                                  f"(check api.streams.{self.name}.records in {self.source.recipe})") from None
            if batch is not None and batch.num_rows:
                if cursor_field is not None:
                    batch = _after(batch, cursor_field, since)
                    high = _max_cursor(batch, cursor_field, high)
                if batch.num_rows:
                    self.records += batch.num_rows
                    yield from pending.add(batch, page.path)
            following = self.paginator.next(self.name, position, page, records)
            if following is None:
                yield from pending.flush()
                return high
            position = following
            if pending.full:
                yield from pending.flush()
                if self.options.resumable:
                    yield checkpoint(position, high)

    def _request(self, name: str, spec: StreamSpec, paginator: Paginator, parent: dict[str, Any], since: Any,
                 position: Position) -> tuple[Page, list[Any]]:
        cursor_text = _format(since, spec.incremental.format) if spec.incremental is not None else None
        context = {"parent": parent, "cursor": cursor_text}
        params = {k: v for k, v in self.source.render(spec.params, context).items() if v is not None}
        if spec.incremental is not None and spec.incremental.param and cursor_text is not None:
            params[spec.incremental.param] = cursor_text
        body = self.source.render(spec.json_body, context) if spec.json_body is not None else None
        headers = {k: str(v) for k, v in self.source.render(spec.headers, context).items() if v is not None}
        path = _render_path(spec.path, self.source, context)
        url, query, body = paginator.apply(position, path, params, body)
        page = self.client.request(name, spec.method, url, params=query, json=body, headers=headers or None)
        records = page.body if spec.records is None else dig(page.body, spec.records)
        if records is None and spec.records is not None and isinstance(page.body, dict) \
                and _has_path(page.body, spec.records):
            records = []  # "data": null
        if not isinstance(records, list):
            found = "nothing" if records is None else type(records).__name__
            raise SourceError(f"stream '{name}': {spec.method} {page.path} answered no list of records at "
                              f"'{spec.records or '(the body)'}' (found {found}) "
                              f"(check api.streams.{name}.records in {self.source.recipe})")
        return page, records


def _comparable(text: Any) -> Any:
    """A cursor value as an aware datetime or a Decimal when it reads as one (the cursor rule), else text."""
    value = cursor_key(text)[1]
    return value if isinstance(value, datetime | Decimal) else str(text)


def _has_path(body: dict[str, Any], path: str) -> bool:
    head, _, rest = path.rpartition(".")
    parent = dig(body, head) if head else body
    return isinstance(parent, dict) and rest in parent


def _render_path(path: str, source: RestSource, context: dict[str, Any]) -> str:
    """The stream's path with placeholders filled, each value URL-quoted (a parent id cannot add path segments)."""
    def one(match: Any) -> str:
        value = source.render("{" + match.group(1) + "}", context)
        return quote("" if value is None else str(value), safe="")

    return PLACEHOLDER.sub(one, path)


def _format(since: Any, fmt: str) -> str | None:
    """The lower bound as the API wants it in the request."""
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
        if fmt == "unix":
            return str(int(moment.timestamp()))
        if fmt == "unix_ms":
            return str(int(moment.timestamp() * 1000))
        if fmt == "date":
            return moment.date().isoformat()
        if fmt == "raw":
            return moment.isoformat()
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"
    return cursor_to_text(since)


def _scalar(value: Any, type_: pa.DataType) -> pa.Scalar | None:
    """``value`` (a datetime, a Decimal or text) as a scalar comparable with a column of ``type_``."""
    try:
        if pa.types.is_timestamp(type_) and isinstance(value, datetime):
            moment = value.astimezone(timezone.utc)
            return pa.scalar(moment if type_.tz else moment.replace(tzinfo=None), type_)
        if pa.types.is_date(type_) and isinstance(value, datetime):
            return pa.scalar(value.astimezone(timezone.utc).date(), type_)
        if (pa.types.is_integer(type_) or pa.types.is_floating(type_)) and not isinstance(value, datetime | str):
            return pa.scalar(float(value), pa.float64())
    except (pa.ArrowInvalid, OverflowError, ValueError):
        return None
    return None


def _after(batch: pa.RecordBatch, field: str, since: Any) -> pa.RecordBatch:
    """The rows whose cursor is after ``since`` (rows without a cursor kept, as the stage keeps them)."""
    if since is None:
        return batch
    column = batch.column(field)
    threshold = _scalar(since, column.type)
    if threshold is not None:
        keep = pc.fill_null(pc.greater(column, threshold), True)
    else:  # text that Arrow could not read as the cursor's type: compared value by value, by the cursor rule
        keep = pa.array([v is None or cursor_after(v, since) for v in column.to_pylist()], pa.bool_())
    return batch if pc.all(keep).as_py() else batch.filter(keep)


def _max_cursor(batch: pa.RecordBatch, field: str, high: Any) -> Any:
    column = batch.column(field)
    if not len(column) or column.null_count == len(column):
        return high
    if pa.types.is_string(column.type):
        values = [v for v in pc.unique(column).to_pylist() if v is not None]
        best = values[0]
        for v in values[1:]:
            if cursor_after(v, best):
                best = v
        value: Any = best
    else:
        value = pc.max(column).as_py()
    text = cursor_to_text(value.isoformat() if isinstance(value, date) and not isinstance(value, datetime)
                          else value)
    return text if cursor_after(text, high) else high
