"""Moved to ``engines.singer.reader`` (the next commit splits the wire format back out of it)."""

from dativo_ingest.engines.singer.reader import *  # noqa: F403
