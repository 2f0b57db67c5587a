"""Moved to ``engines.common.records`` (the next commit makes it the one mapping of both engines)."""

from dativo_ingest.engines.common.records import *  # noqa: F403
from dativo_ingest.engines.common.records import JSON, TIMESTAMP, TIMESTAMP_TZ, StreamColumns  # noqa: F401
