"""How a job's source is read, decided once when the plan is built: the ``ReadPolicy`` on ``JobPlan.read``.

Every engine and the runner ask the policy instead of deciding again from ``source.incremental`` and the write
mode. A run is a **full refresh** (read everything, give the engine no state) when the write mode is
``overwrite`` or the strategy is ``none`` / ``full`` / ``full_refresh``. Otherwise a stream's **cursor** is its
table's own ``cursor_field`` (``source.tables[]``), else ``source.incremental.cursor_field`` when the strategy is
cursor-based (``updated_at``, ``created``, ``updated_after``, ``cursor``) or not given; file sources skip files
already read unchanged (``file_modified_time``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dativo_ingest.config.models import AssetDefinition, Incremental, JobSource
from dativo_ingest.errors import ConfigError

#: ``source.incremental.strategy`` values that mean "read everything every run"
FULL_REFRESH_STRATEGIES = frozenset({"none", "full_refresh", "full"})
#: strategies whose position is a cursor column (``incremental.cursor_field`` applies to every stream)
CURSOR_STRATEGIES = frozenset({"updated_at", "created", "updated_after", "cursor"})
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class ReadPolicy:
    """The read decisions of one job (see the module docstring)."""

    #: the effective ``source.incremental.strategy`` (job > recipe > registry default), lower case; None: not set
    strategy: str | None = None
    #: read everything; no engine gets state, no cursor filters rows
    full_refresh: bool = False
    #: ``incremental.cursor_field`` for every stream without a cursor of its own (None: no default cursor)
    default_cursor: str | None = None
    #: ``source.tables[].cursor_field`` by stream (object, else table name)
    stream_cursors: dict[str, str] = field(default_factory=dict)
    #: rows this far behind the committed cursor are read again (``lookback_days`` / ``lookback``)
    lookback_seconds: int = 0
    #: file sources skip files whose size and modification time are in the committed state
    skip_unchanged_files: bool = True
    #: after the rows, read every primary key the source holds and delete target rows whose key is gone
    detect_deletes: bool = False

    def cursor_for(self, stream: str) -> str | None:
        """The cursor field of ``stream`` (None: the stream is read whole every run)."""
        if self.full_refresh:
            return None
        return self.stream_cursors.get(stream, self.default_cursor)

    @property
    def cursor_fields(self) -> dict[str | None, str]:
        """``{stream: field}`` plus ``{None: field}`` for every other stream; empty for a full refresh."""
        if self.full_refresh:
            return {}
        out: dict[str | None, str] = dict(self.stream_cursors)
        if self.default_cursor:
            out[None] = self.default_cursor
        return out


def lookback_seconds(incremental: Incremental | None, path: Path | None = None) -> int:
    """``lookback_days`` and/or ``lookback`` (``30m``, ``2h``, ``1d``, ``1w``, seconds), in seconds; larger wins."""
    if incremental is None:
        return 0
    seconds = int(float(incremental.lookback_days or 0) * 86400)
    text = str(incremental.lookback or "").strip().lower()
    if text:
        try:
            seconds = max(seconds, int(float(text[:-1]) * _UNITS[text[-1]]) if text[-1] in _UNITS else int(text))
        except (ValueError, KeyError):
            raise ConfigError(path, f"cannot read lookback '{text}'", field="source.incremental.lookback",
                              fix="use a duration like 30m, 2h, 1d") from None
    return seconds


def build_read_policy(source: JobSource, *, write_mode: str, job_path: Path | None) -> ReadPolicy:
    """The policy of a job from its merged ``source`` section and its write mode (``check_read_policy`` then
    checks it against the asset)."""
    incremental = source.incremental or Incremental()
    strategy = str(incremental.strategy or "").lower() or None
    full = write_mode == "overwrite" or strategy in FULL_REFRESH_STRATEGIES
    default = incremental.cursor_field
    default_cursor = str(default) if default and (strategy is None or strategy in CURSOR_STRATEGIES) else None
    stream_cursors = {str(t.object or t.name): str(t.cursor_field) for t in source.tables or [] if t.cursor_field}
    return ReadPolicy(
        strategy=strategy,
        full_refresh=full,
        default_cursor=None if full else default_cursor,
        stream_cursors={} if full else stream_cursors,
        lookback_seconds=lookback_seconds(incremental, job_path),
        skip_unchanged_files=not full,
        detect_deletes=bool(incremental.detect_deletes),
    )


def check_read_policy(policy: ReadPolicy, asset: AssetDefinition, *, write_mode: str, job_path: Path | None,
                      asset_path: Path | None) -> None:
    """Refuse, naming the job file and field, a cursor field the asset does not have and ``detect_deletes``
    without merge by primary key (part of ``startup_sequence``, so ``check`` refuses what ``run`` would)."""
    names = set(asset.field_names)
    for stream, name in policy.cursor_fields.items():
        if name not in names:
            where = "source.incremental.cursor_field" if stream is None else "source.tables[].cursor_field"
            raise ConfigError(job_path, f"cursor_field '{name}' is not in the asset schema", field=where,
                              fix=f"use one of the fields of {asset_path}")
    if policy.detect_deletes and not (write_mode == "merge" and asset.primary_key):
        raise ConfigError(job_path, "detect_deletes needs write_mode merge and a primary key in the asset",
                          field="source.incremental.detect_deletes",
                          fix=f"declare primary_key in {asset_path}, or remove detect_deletes")


__all__ = ["CURSOR_STRATEGIES", "FULL_REFRESH_STRATEGIES", "ReadPolicy", "build_read_policy", "check_read_policy",
           "lookback_seconds"]
