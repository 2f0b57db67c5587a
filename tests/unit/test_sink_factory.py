"""``sinks.factory`` names the file and database targets itself, so that opening an Iceberg sink imports neither."""

from __future__ import annotations

from dativo_ingest.sinks import factory
from dativo_ingest.sinks.database.sink import DATABASE_TARGETS
from dativo_ingest.sinks.files.sink import FILE_TARGETS


def test_the_factory_names_the_targets_the_sinks_write() -> None:
    assert factory.FILE_TARGETS == FILE_TARGETS
    assert factory.DATABASE_TARGETS == DATABASE_TARGETS
    assert factory.TARGETS == ("iceberg", *FILE_TARGETS, *DATABASE_TARGETS)
