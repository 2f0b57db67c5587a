"""The ``api:`` section of a source recipe: how the native engine reads a REST API, declared in YAML.

The shape takes from dlt's ``rest_api`` source its compact vocabulary (one client block, ``streams`` with
``path``/``params``/``json``, a records selector, paginator types by name, ``{placeholders}`` bound to the
parent record and the incremental start value) and from Airbyte's declarative manifests the pieces dlt
leaves to code: the stop condition of a cursor paginator (``has_more_path``), a token taken from the last
record (Stripe ``starting_after``), a page token injected into the JSON body (HubSpot search ``after``),
errors reported inside a 200 body (Slack ``ok: false``) and the lookback window. Connection values (the
endpoint, keys, the timeout) stay in ``connection_template`` where ``${VAR}`` resolves from the tenant's
secrets; the ``api:`` section refers to them as ``{connection.NAME}`` and never holds a secret itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dativo_ingest.engines.native.sources import has_api as has_api  # lives there: no pydantic models to build
from dativo_ingest.errors import ConfigError

#: ``{connection.api_key}``, ``{parent.id}``, ``{cursor}``: what a template may refer to
PLACEHOLDER = re.compile(r"\{(cursor|connection\.[A-Za-z0-9_\-]+|parent\.[A-Za-z0-9_.\-]+)\}")
_ANY_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


class _Spec(BaseModel):
    """Unknown keys are errors (usually typos)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AuthSpec(_Spec):
    """How requests authenticate. Values are templates (``{connection.api_key}``)."""

    type: Literal["none", "bearer", "api_key", "basic", "oauth2"] = "none"
    #: bearer: the token
    token: str | None = None
    #: api_key: the header or query parameter name, and its value
    name: str | None = None
    value: str | None = None
    location: Literal["header", "query"] = "header"
    #: basic
    username: str | None = None
    password: str | None = None
    #: oauth2 (client credentials, or a refresh token; a rotated refresh token is kept between runs)
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    scope: str | None = None
    grant_type: Literal["client_credentials", "refresh_token"] | None = None

    @model_validator(mode="after")
    def _complete(self) -> AuthSpec:
        need = {"bearer": ["token"], "api_key": ["name", "value"], "basic": ["username"],
                "oauth2": ["token_url", "client_id", "client_secret"]}.get(self.type, [])
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(missing)}")
        if self.type == "oauth2" and self.effective_grant == "refresh_token" and not self.refresh_token:
            raise ValueError("auth type oauth2 with grant_type refresh_token needs refresh_token")
        return self

    @property
    def effective_grant(self) -> str:
        return self.grant_type or ("refresh_token" if self.refresh_token else "client_credentials")


PaginatorType = Literal["none", "cursor", "offset", "page_number", "link_header", "next_url"]


class PaginatorSpec(_Spec):
    """How the next page is asked for.

    - ``cursor``: a token from the body (``cursor_path``) or from the page's last record (``last_record_field``,
      Stripe ``starting_after``), sent as the query parameter ``param`` or into the JSON body at ``body_path``;
      stops when the token is empty or ``has_more_path`` is false.
    - ``offset``: ``param`` (default ``offset``) advances by the records received; stops on a short page.
    - ``page_number``: ``param`` (default ``page``) from ``start`` (default 1); stops on an empty page.
    - ``link_header``: the ``Link: <…>; rel="next"`` header. ``next_url``: a URL in the body at ``next_url_path``.
    """

    type: PaginatorType = "none"
    cursor_path: str | None = None
    last_record_field: str | None = None
    has_more_path: str | None = None
    param: str | None = None
    body_path: str | None = None
    limit_param: str | None = None
    limit: int | None = Field(default=None, gt=0)
    start: int | None = None
    next_url_path: str | None = None
    total_path: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> PaginatorSpec:
        if self.type == "cursor":
            if bool(self.cursor_path) == bool(self.last_record_field):
                raise ValueError("a cursor paginator needs exactly one of cursor_path or last_record_field")
            if not (self.param or self.body_path):
                raise ValueError("a cursor paginator needs param (a query parameter) or body_path (JSON body)")
        if self.type == "next_url" and not self.next_url_path:
            raise ValueError("a next_url paginator needs next_url_path")
        if self.type == "offset" and not self.limit:
            raise ValueError("an offset paginator needs limit (the page size it asks for)")
        return self


CursorFormat = Literal["iso", "unix", "unix_ms", "date", "raw"]


class IncrementalSpec(_Spec):
    """The stream's cursor: an asset field whose values only grow; the next run asks for what comes after."""

    cursor_field: str
    #: a query parameter receiving the start value (``created[gt]``); or use ``{cursor}`` in params/json
    param: str | None = None
    #: how the start value is written in the request
    format: CursorFormat = "iso"
    #: the start value when nothing is committed yet (a template, e.g. ``{connection.start_date}``)
    initial: str | None = None


class ParentSpec(_Spec):
    """A child stream reads once per record of ``stream``; ``key`` names the parent's field that keeps a
    separate cursor (e.g. Slack channels → messages per channel)."""

    stream: str
    key: str = "id"


class FieldSpec(_Spec):
    """Where an asset field comes from: one path, or several (the first that is not null), or a template."""

    path: str | list[str] | None = None
    template: str | None = None
    #: numbers in a date/time field are Unix seconds (``s``) or milliseconds (``ms``)
    epoch: Literal["s", "ms"] = "s"

    @model_validator(mode="after")
    def _one(self) -> FieldSpec:
        if (self.path is None) == (self.template is None):
            raise ValueError("give exactly one of path or template")
        return self


class StreamSpec(_Spec):
    """One endpoint whose records become one stream."""

    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    #: dotted path of the records list in the body (``data``, ``results``); none: the body is the list
    records: str | None = None
    paginator: PaginatorSpec | None = None
    primary_key: list[str] = Field(default_factory=list)
    #: asset field -> ``path`` | ``[path, fallback path]`` | ``"{parent.id}"`` | FieldSpec
    fields: dict[str, str | list[str] | FieldSpec] = Field(default_factory=dict)
    incremental: IncrementalSpec | None = None
    parent: ParentSpec | None = None


class ErrorsSpec(_Spec):
    """Errors an API reports inside a 200 body (Slack: ``{"ok": false, "error": "invalid_auth"}``)."""

    ok_path: str
    message_path: str | None = None
    #: error codes that mean the credentials are refused (reported like HTTP 401)
    auth_codes: list[str] = Field(default_factory=list)
    #: error codes worth retrying (e.g. ``ratelimited``)
    retry_codes: list[str] = Field(default_factory=list)


class CheckSpec(_Spec):
    """The one cheap authenticated request ``check`` makes (default: the first stream's first page)."""

    path: str
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(default=None, alias="json")


class ApiSpec(_Spec):
    """The whole ``api:`` section."""

    auth: AuthSpec = Field(default_factory=AuthSpec)
    headers: dict[str, str] = Field(default_factory=dict)
    #: the default paginator of every stream
    paginator: PaginatorSpec | None = None
    errors: ErrorsSpec | None = None
    check: CheckSpec | None = None
    #: attempts per request for 429 / 5xx / connection errors (the first included)
    max_attempts: int = Field(default=6, ge=1, le=20)
    #: the longest wait between two attempts, in seconds (a longer Retry-After fails the request)
    max_backoff_seconds: float = Field(default=120.0, gt=0)
    streams: dict[str, StreamSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _parents(self) -> ApiSpec:
        for name, stream in self.streams.items():
            if stream.parent is not None:
                parent = self.streams.get(stream.parent.stream)
                if parent is None:
                    raise ValueError(f"streams.{name}.parent.stream: '{stream.parent.stream}' is not a stream "
                                     f"(known: {', '.join(self.streams)})")
                if parent.parent is not None:
                    raise ValueError(f"streams.{name}: a parent stream cannot itself have a parent")
        return self

    def paginator_of(self, stream: StreamSpec) -> PaginatorSpec:
        return stream.paginator or self.paginator or PaginatorSpec()


class _RecipeApi(BaseModel):
    model_config = ConfigDict(extra="ignore")
    api: ApiSpec


def load_api_spec(raw: Any, recipe_path: Path | str | None) -> ApiSpec:
    """Validate the ``api:`` section; every problem is one ``ConfigError`` line naming the recipe and the field."""
    from dativo_ingest.config.loader import parse_model

    if not isinstance(raw, dict):
        raise ConfigError(recipe_path, "must be a mapping (auth, paginator, streams …)", field="api",
                          fix="see the REST section of the README")
    _refuse_variables(raw, recipe_path)
    spec = parse_model(_RecipeApi, {"api": raw}, recipe_path).api
    _check_placeholders(spec, recipe_path)
    return spec


def _refuse_variables(raw: Any, recipe_path: Path | str | None, where: str = "api") -> None:
    from dativo_ingest.config.expand import variables_in

    names = variables_in(raw)
    if names:
        name = sorted(names)[0]
        raise ConfigError(recipe_path, f"${{{name}}} is not expanded here", field=where,
                          fix=f"put it in connection_template (e.g. key: \"${{{name}}}\") and write {{connection.key}}")


def _templates(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string inside ``value`` with the dotted place it sits."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _templates(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _templates(v, f"{where}[{i}]")]
    return []


def _check_placeholders(spec: ApiSpec, recipe_path: Path | str | None) -> None:
    """``{parent.*}`` only in child streams, ``{cursor}`` only in incremental ones; no unknown ``{name}``."""
    places: list[tuple[str, str, str | None, bool]] = []  # (where, text, stream, is parent-able)
    for key in ("token", "value", "username", "password", "token_url", "client_id", "client_secret",
                "refresh_token", "scope"):
        text = getattr(spec.auth, key)
        if text:
            places.append((f"api.auth.{key}", text, None, False))
    places += [(w, t, None, False) for w, t in _templates(spec.headers, "api.headers")]
    for name, stream in spec.streams.items():
        base = f"api.streams.{name}"
        parts = _templates(stream.params, f"{base}.params") + _templates(stream.json_body, f"{base}.json") \
            + _templates(stream.headers, f"{base}.headers") + [(f"{base}.path", stream.path)]
        for field, source in stream.fields.items():
            if isinstance(source, FieldSpec) and source.template:
                parts.append((f"{base}.fields.{field}.template", source.template))
            elif isinstance(source, str) and source.startswith("{"):
                parts.append((f"{base}.fields.{field}", source))
        if stream.incremental and stream.incremental.initial:
            parts.append((f"{base}.incremental.initial", stream.incremental.initial))
        places += [(w, t, name, True) for w, t in parts]
    for where, text, stream_name, in_stream in places:
        for match in _ANY_BRACED.finditer(text):
            token = match.group(1)
            ours = token == "cursor" or token.split(".")[0] in ("connection", "parent")
            if not ours:
                continue  # literal braces that are not ours (e.g. inside a JSON string)
            if not PLACEHOLDER.fullmatch("{" + token + "}"):
                raise ConfigError(recipe_path, f"unknown placeholder {{{token}}}", field=where,
                                  fix="use {connection.NAME}, {parent.FIELD} or {cursor}")
            stream = spec.streams.get(stream_name) if stream_name else None
            if token.startswith("parent.") and (stream is None or stream.parent is None or not in_stream):
                raise ConfigError(recipe_path, f"{{{token}}} needs a parent stream", field=where,
                                  fix="add parent: {stream: NAME, key: id} to the stream, or remove the placeholder")
            if token == "cursor" and (stream is None or stream.incremental is None):
                raise ConfigError(recipe_path, "{cursor} needs incremental.cursor_field on the stream", field=where,
                                  fix="declare incremental: {cursor_field: FIELD} or remove {cursor}")
            if token == "cursor" and where.endswith(".incremental.initial"):
                raise ConfigError(recipe_path, "{cursor} cannot define its own start value", field=where,
                                  fix="use a fixed date or {connection.start_date}")
