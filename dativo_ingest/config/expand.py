"""``${VAR}`` / ``${VAR:-default}`` expansion over nested dicts, lists and strings.

Values come from the tenant's secrets first, then the process environment. ``$${VAR}`` is a literal
``${VAR}``. Only string values are expanded (never keys), and the result of an expansion is not
expanded again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dativo_ingest.errors import ConfigError

_VAR_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Lookup = Callable[[str], str | None]


def make_lookup(secrets: Mapping[str, str] | Any | None = None,
                environ: Mapping[str, str] | None = None) -> Lookup:
    """Resolve a name from ``secrets`` (anything with ``.get``) first, then ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ

    def lookup(name: str) -> str | None:
        value = secrets.get(name) if secrets is not None else None
        return value if value is not None else env.get(name)

    return lookup


def variables_in(data: Any) -> set[str]:
    """The names of every ``${VAR}`` referenced in ``data`` (escaped ``$${VAR}`` excluded)."""
    found: set[str] = set()
    if isinstance(data, str):
        found.update(m.group(2) for m in _VAR_RE.finditer(data) if not m.group(1))
    elif isinstance(data, Mapping):
        for value in data.values():
            found |= variables_in(value)
    elif isinstance(data, list):
        for value in data:
            found |= variables_in(value)
    return found


def _field(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def expand_vars(
    data: Any,
    lookup: Lookup | Mapping[str, str],
    *,
    path: str | Path | None = None,
    field: str = "",
    tenant_id: str | None = None,
) -> tuple[Any, set[str]]:
    """Return ``(expanded copy of data, names of the variables used)``.

    An unset variable without a default raises ``ConfigError`` naming ``path`` and the dotted field.
    """
    get: Lookup = lookup.get if isinstance(lookup, Mapping) else lookup
    used: set[str] = set()
    fix = f"set it in secrets/{tenant_id or '<tenant>'}/*.env or the environment"

    def expand_str(text: str, loc: tuple[Any, ...]) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, name, default = match.group(1), match.group(2), match.group(3)
            if escaped:
                return match.group(0)[1:]
            value = get(name)
            if default is not None and not value:
                value = default
            if value is None:
                raise ConfigError(path, f"Missing required environment variable: {name}",
                                  field=_field(field, loc) or None, fix=fix)
            used.add(name)
            return value

        return _VAR_RE.sub(replace, text)

    def walk(value: Any, loc: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return expand_str(value, loc) if "${" in value else value
        if isinstance(value, Mapping):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    return walk(data, ()), used
