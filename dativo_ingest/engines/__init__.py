"""Engines turn a job plan into the normalised stream (``dativo_ingest.stream``): see ``engines.base``."""

from dativo_ingest.engines.base import Engine, get_engine

__all__ = ["Engine", "get_engine"]
