"""Deep merge of config mappings: the job overrides its connector recipe."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``override`` wins; nested mappings are merged recursively; lists and scalars replace.

    Neither argument is modified, and the result shares no mutable values with them.
    """
    out: dict[str, Any] = copy.deepcopy(dict(base or {}))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def without_overridden(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of ``base`` that survives ``deep_merge(base, override)`` (keys the override replaces are gone).

    Lets a recipe's template be expanded *after* the merge: a ``${VAR}`` the job overrides is never needed.
    """
    out: dict[str, Any] = {}
    override = override or {}
    for key, value in (base or {}).items():
        if key not in override:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(override[key], Mapping):
            out[key] = without_overridden(value, override[key])
    return out
