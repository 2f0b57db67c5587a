"""The engines that exist, and their other names: the one list the loader, the registry check and
``engines.base`` share (a leaf module, so the config layer needs no engine import)."""

from __future__ import annotations

#: the engines this package implements
ENGINES = ("native", "airbyte", "singer", "spark")
#: other names of an engine (meltano is how the registry has always called the Singer engine)
ALIASES = {"meltano": "singer"}


def canonical_engine(name: str) -> str:
    """The engine's own name (``meltano`` → ``singer``)."""
    return ALIASES.get(name, name)


def is_engine(name: str) -> bool:
    """Whether an engine of this name (or alias) exists."""
    return canonical_engine(name) in ENGINES


def available_engines() -> str:
    """``native, airbyte, singer (also called meltano)`` — for messages."""
    also = {canonical: alias for alias, canonical in ALIASES.items()}
    return ", ".join(f"{e} (also called {also[e]})" if e in also else e for e in ENGINES)


__all__ = ["ALIASES", "ENGINES", "available_engines", "canonical_engine", "is_engine"]
