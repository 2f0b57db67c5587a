"""``check`` (and ``run``, before reading): one cheap authenticated request to the job's API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dativo_ingest.engines.native.rest.client import ApiClient, Page
from dativo_ingest.engines.native.rest.reader import ReadOptions, StreamReader, read_options
from dativo_ingest.engines.native.rest.source import RestSource
from dativo_ingest.errors import InfrastructureError, SourceError

if TYPE_CHECKING:
    from dativo_ingest.config.plan import JobPlan

CHECK_STREAM = "check"


def check_rest(plan: JobPlan) -> None:
    """Validate the recipe's ``api:`` section and the job against it, then ask the API once.

    401/403 is one line naming the recipe and the secret; any other failure one line naming the request."""
    source = RestSource.from_plan(plan)
    options = read_options(plan, source)
    with source.client() as client:
        try:
            ask_once(source, client, options.streams[0], [(f.name, f.type) for f in plan.asset.fields], options)
        except SourceError as exc:
            raise InfrastructureError(f"{source.recipe}: check request failed: {exc.message}") from None


def ask_once(source: RestSource, client: ApiClient, stream: str, fields: list[tuple[str, str]],
             options: ReadOptions) -> Page:
    """The recipe's ``api.check`` request, else the first page of ``stream`` (of its parent, for a child)."""
    check = source.spec.check
    if check is not None:
        body = source.render(check.json_body, {}) if check.json_body is not None else None
        params = {k: v for k, v in source.render(check.params, {}).items() if v is not None}
        return client.request(CHECK_STREAM, check.method, check.path, params=params, json=body)
    spec = source.stream(stream)
    name = spec.parent.stream if spec.parent is not None else stream
    return StreamReader(source, client, name, fields, options).first_page()
