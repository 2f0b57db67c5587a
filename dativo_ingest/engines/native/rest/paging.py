"""Paginators: where the next page is, as a small JSON position that the state can keep.

A position is ``{}`` for the first page, then ``{"token": …}`` (cursor), ``{"offset": n}``, ``{"page": n}``
or ``{"url": …}`` (``Link`` header / next URL in the body; credential query parameters removed). Committed
with the rows of the pages before it, it is where a killed run resumes.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx

from dativo_ingest.engines.native.rest.client import Page
from dativo_ingest.engines.native.rest.spec import PaginatorSpec
from dativo_ingest.engines.native.rest.templates import dig
from dativo_ingest.errors import SourceError

Position = dict[str, Any]
_KEYS = {"cursor": "token", "offset": "offset", "page_number": "page", "link_header": "url", "next_url": "url"}


class Paginator:
    """One paginator of a stream (see the module docstring)."""

    def __init__(self, spec: PaginatorSpec, *, credential_params: list[str] | None = None) -> None:
        self.spec = spec
        self.credential_params = list(credential_params or [])

    def valid(self, position: Any) -> bool:
        """Whether a kept position belongs to this kind of paginator (a recipe may have changed since)."""
        if not isinstance(position, dict):
            return False
        key = _KEYS.get(self.spec.type)
        return not position or (key is not None and set(position) == {key})

    def apply(self, position: Position, url: str, params: dict[str, Any], body: Any
              ) -> tuple[str, dict[str, Any] | None, Any]:
        """The request (url, query parameters, JSON body) for the page at ``position``."""
        spec, kind = self.spec, self.spec.type
        if kind == "cursor" and position.get("token") is not None:
            if spec.param:
                params = {**params, spec.param: position["token"]}
            if spec.body_path:
                body = _put(body, spec.body_path, position["token"])
        elif kind == "offset":
            params = {**params, spec.param or "offset": position.get("offset", spec.start or 0),
                      spec.limit_param or "limit": spec.limit}
        elif kind == "page_number":
            params = {**params, spec.param or "page": position.get("page", 1 if spec.start is None else spec.start)}
            if spec.limit_param and spec.limit:
                params[spec.limit_param] = spec.limit
        elif kind in ("link_header", "next_url") and position.get("url"):
            return str(position["url"]), None, body  # the next URL carries the whole query
        return url, params, body

    def next(self, stream: str, position: Position, page: Page, records: list[Any]) -> Position | None:
        """The position of the page after ``page``; None when ``page`` was the last one."""
        spec, kind, body = self.spec, self.spec.type, page.body
        if kind == "none":
            return None
        if kind == "cursor":
            if spec.has_more_path is not None and not dig(body, spec.has_more_path):
                return None
            if spec.cursor_path:
                token = dig(body, spec.cursor_path)
            else:
                token = dig(records[-1], spec.last_record_field) if records else None
            if token in (None, ""):
                return None
            nxt: Position = {"token": token}
        elif kind == "offset":
            offset = int(position.get("offset", spec.start or 0)) + len(records)
            total = dig(body, spec.total_path) if spec.total_path else None
            if not records or len(records) < (spec.limit or 0) or (total is not None and offset >= int(total)):
                return None
            nxt = {"offset": offset}
        elif kind == "page_number":
            number = int(position.get("page", 1 if spec.start is None else spec.start))
            total = dig(body, spec.total_path) if spec.total_path else None
            if not records or (total is not None and number >= int(total)):
                return None
            nxt = {"page": number + 1}
        else:
            url = page.response.links.get("next", {}).get("url") if kind == "link_header" \
                else dig(body, spec.next_url_path)
            if not url:
                return None
            nxt = {"url": self._without_credentials(str(url))}
        if nxt == position:
            raise SourceError(f"stream '{stream}': {page.path}: the API gave the same next page twice ({kind} "
                              f"paginator); stopped instead of reading it forever")
        return nxt

    def _without_credentials(self, url: str) -> str:
        parsed = httpx.URL(url)
        for name in self.credential_params:
            parsed = parsed.copy_remove_param(name)
        return str(parsed)


def _put(body: Any, path: str, value: Any) -> Any:
    """A copy of the JSON ``body`` with ``value`` at the dotted ``path``."""
    out = copy.deepcopy(body) if isinstance(body, dict) else {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
    return out
