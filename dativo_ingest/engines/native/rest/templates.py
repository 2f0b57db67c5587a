"""``{connection.NAME}``, ``{parent.FIELD}`` and ``{cursor}`` in a recipe's ``api:`` section, and dotted paths into
JSON documents (``paging.next.after``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dativo_ingest.engines.native.rest.spec import PLACEHOLDER


class MissingValue(KeyError):
    """A template names a connection value that is not set."""


def dig(document: Any, path: str | None) -> Any:
    """The value at a dotted ``path`` (``a.b.0.c``: a number steps into a list); None when any step is missing."""
    if not path:
        return document
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def _lookup(token: str, context: Mapping[str, Any]) -> Any:
    if token == "cursor":
        return context.get("cursor")
    scope, _, path = token.partition(".")
    if scope == "connection":
        connection = context.get("connection") or {}
        if path not in connection:
            raise MissingValue(path)
        return connection[path]
    return dig(context.get("parent"), path)


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder replaced (dicts and lists walked). A string that is exactly one
    placeholder becomes that value as it is (a number stays a number, a missing one None)."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), context)
        if "{" not in value:
            return value
        return PLACEHOLDER.sub(lambda m: _text(_lookup(m.group(1), context)), value)
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def uses(value: Any, token: str) -> bool:
    """Whether ``value`` (walked like ``render``) holds the placeholder ``{token}``."""
    if isinstance(value, str):
        return any(m.group(1) == token for m in PLACEHOLDER.finditer(value))
    if isinstance(value, dict):
        return any(uses(v, token) for v in value.values())
    if isinstance(value, list):
        return any(uses(v, token) for v in value)
    return False


def connection_keys(value: Any) -> set[str]:
    """The connection values ``value`` refers to (``{connection.api_key}`` → ``api_key``)."""
    if isinstance(value, str):
        tokens = (m.group(1) for m in PLACEHOLDER.finditer(value))
        return {t.split(".", 1)[1] for t in tokens if t.startswith("connection.")}
    if isinstance(value, dict):
        return {k for v in value.values() for k in connection_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in connection_keys(v)}
    return set()
