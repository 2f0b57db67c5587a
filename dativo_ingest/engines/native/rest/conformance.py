"""``dativo_ingest test-connector --engine native --connector NAME``: a REST recipe checked against the API its
connection points at (``${VAR}``s of ``connection_template`` from the environment, or ``--config``).

Checks, one line each: the ``api:`` section is valid; one authenticated request; every stream read whole, its
records cast and validated by the stage against the asset whose ``object`` is the stream (``assets/<connector>/``);
incremental streams end with a cursor; a read resumed from the first page's checkpoint returns exactly the
records the whole read returned after it (nothing lost, nothing twice); a second read from the final state
returns only records after the cursor.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dativo_ingest.engines.common.conformance import Report, StreamStats
from dativo_ingest.engines.native.rest.check import ask_once
from dativo_ingest.engines.native.rest.client import ApiClient
from dativo_ingest.engines.native.rest.reader import ReadOptions, StreamReader
from dativo_ingest.engines.native.rest.source import RestSource, auth_fix
from dativo_ingest.engines.native.rest.spec import load_api_spec
from dativo_ingest.errors import ConfigError, DativoError
from dativo_ingest.stream import Batch, Checkpoint

MAX_EXAMPLES = 3


def rest_report(connector: str, *, project_root: Path, config_path: Path | None = None,
                streams: list[str] | None = None) -> Report:
    """Run the checks of the module docstring against ``connectors/sources/<connector>.yaml``."""
    from dativo_ingest.config.expand import expand_vars, make_lookup
    from dativo_ingest.config.loader import load_recipe, read_yaml

    report = Report("native", connector)
    path = project_root / "connectors" / "sources" / f"{connector}.yaml"
    if not path.is_file():
        path = project_root / "connectors" / f"{connector}.yaml"
    recipe = load_recipe(path)
    relative = path.relative_to(project_root)
    raw = (recipe.model_extra or {}).get("api")
    if raw is None:
        report.add("spec", False, f"{relative} has no api: section (the native engine reads REST APIs from it)")
        return report
    try:
        spec = load_api_spec(raw, relative)
    except ConfigError as exc:
        report.add("spec", False, exc.message)
        return report
    report.add("spec", True, f"{relative}: api section valid ({len(spec.streams)} streams)")
    overrides = read_yaml(config_path) if config_path is not None else {}
    template = {k: v for k, v in recipe.connection_template.items() if k not in overrides}
    connection, _ = expand_vars(template, make_lookup(None), path=relative, field="connection_template")
    source = RestSource.build(spec, relative, {**connection, **overrides}, tenant_id="test-connector",
                              connector=connector, rate_limits=recipe.rate_limits,
                              auth_fix=auth_fix(spec, recipe.connection_template, overrides, config_path),
                              redact=lambda text: text)
    names = streams or list(spec.streams)
    with source.client() as client:
        try:
            page = ask_once(source, client, names[0], [("id", "string")],
                            ReadOptions(streams=names[:1], incremental=True, lookback_seconds=0, resumable=False))
        except DativoError as exc:
            report.add("check", False, exc.message)
            return report
        report.add("check", True, f"one authenticated request: {page.response.request.method} {page.path} answered "
                   f"HTTP {page.response.status_code}")
        for name in names:
            try:
                _stream(report, source, client, name, project_root)
            except DativoError as exc:
                report.add("read", False, f"stream '{name}': {exc.message}")
    return report


def _asset(project_root: Path, connector: str, stream: str) -> Any:
    from dativo_ingest.config.loader import load_asset

    for candidate in sorted((project_root / "assets" / connector).glob("v*/*.yaml")):
        try:
            asset = load_asset(candidate)
        except ConfigError:
            continue
        if asset.object == stream:
            return asset
    return None


def _stream(report: Report, source: RestSource, client: ApiClient, name: str, project_root: Path) -> None:
    spec = source.stream(name, where="--streams")
    asset = _asset(project_root, source.connector, name)
    if asset is None:
        keys = list(spec.primary_key) + ([spec.incremental.cursor_field] if spec.incremental else [])
        fields = [(k, "string") for k in dict.fromkeys(keys)] or [("id", "string")]
        report.add("records", None, f"stream '{name}': no asset with object '{name}' under assets/"
                   f"{source.connector}/; records not checked against a contract")
    else:
        fields = [(f.name, f.type) for f in asset.fields]
    options = ReadOptions(streams=[name], incremental=True, lookback_seconds=0, resumable=True, batch_rows=1)
    full = _read(source, client, name, fields, options, {})
    report.streams[name] = StreamStats(records=full.rows, states=full.pages, sync_mode="pages")
    if asset is not None:
        _validate(report, name, asset, full.batches)
    key = list(asset.primary_key) if asset is not None else list(spec.primary_key)
    final = full.checkpoints[-1] if full.checkpoints else {}
    if spec.incremental is not None and spec.parent is None:
        cursor = (final.get("cursor") or {}).get("value")
        report.add("state", cursor is not None or full.rows == 0,
                   f"stream '{name}': cursor {spec.incremental.cursor_field} = {cursor}" if cursor is not None
                   else f"stream '{name}': no cursor after {full.rows} records")
    middle = next((c for c in full.checkpoints if isinstance(c.get("rest"), dict) and c["rest"].get("page")), None)
    if middle is not None and key:
        resumed = _read(source, client, name, fields, options, middle)
        before = _keys(full.batches[:full.batches_at.get(id(middle), 0)], key)
        after = _keys(resumed.batches, key)
        whole = _keys(full.batches, key)
        ok = before + after == whole
        report.add("resume", ok, f"stream '{name}': a read resumed at the first page's checkpoint returned "
                   f"{sum(after.values())} records; with the {sum(before.values())} before it "
                   + ("exactly the whole read" if ok else f"they differ from the whole read ({sum(whole.values())})"))
    elif full.pages > 1:
        report.add("resume", None, f"stream '{name}': no primary key to compare resumed reads by")
    if spec.incremental is not None:
        again = _read(source, client, name, fields, options, final)
        report.add("incremental", True, f"stream '{name}': a second read from the final state returned "
                   f"{again.rows} records (after the cursor, or within no lookback)")


@dataclass
class _Read:
    batches: list[pa.RecordBatch] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    #: id(checkpoint state) -> how many batches came before it
    batches_at: dict[int, int] = field(default_factory=dict)
    rows: int = 0
    pages: int = 0


def _read(source: RestSource, client: ApiClient, name: str, fields: list[tuple[str, str]], options: ReadOptions,
          state: dict[str, Any]) -> _Read:
    out = _Read()
    reader = StreamReader(source, client, name, fields, options)
    for message in reader.read(state):
        if isinstance(message, Batch):
            out.batches.append(message.data)
            out.rows += message.data.num_rows
        elif isinstance(message, Checkpoint):
            out.checkpoints.append(message.state)
            out.batches_at[id(message.state)] = len(out.batches)
    out.pages = reader.pages
    return out


def _keys(batches: list[pa.RecordBatch], key: list[str]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for batch in batches:
        columns = [pc.cast(batch.column(k), pa.string()).to_pylist() for k in key]
        counted.update("|".join(str(v) for v in row) for row in zip(*columns, strict=True))
    return counted


def _validate(report: Report, name: str, asset: Any, batches: list[pa.RecordBatch]) -> None:
    from dativo_ingest.stage.stage import SENSITIVE, Stage, StageField
    from dativo_ingest.stage.types import parse_type

    fields = [StageField(f.name, parse_type(f.type), bool(f.required), str(f.classification or "").upper()
                         in SENSITIVE) for f in asset.fields]
    stage = Stage(fields, run_id="test-connector", ingest_ts=datetime.now(timezone.utc))
    try:
        for batch in batches:
            stage.add(Batch(name, batch))
        stats = stage.stats
    finally:
        stage.close()
    if stats.rows_quarantined:
        report.add("records", False, f"stream '{name}': {stats.rows_quarantined} of {stats.rows_in} records do not "
                   f"match the asset {asset.name}: {' | '.join(stats.examples[:MAX_EXAMPLES])}")
    else:
        report.add("records", True, f"stream '{name}': {stats.rows_in} records match the asset {asset.name}")
