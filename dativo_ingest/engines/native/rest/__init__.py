"""Native REST API sources: a recipe's ``api:`` section describes the API (auth, streams, pagination,
incremental parameters, child streams); pages become Arrow batches typed by the asset, with the read's
position committed with the data. See ``spec.py`` for the vocabulary and ``reader.py`` for the state."""

from dativo_ingest.engines.native.rest.check import check_rest
from dativo_ingest.engines.native.rest.reader import read_rest
from dativo_ingest.engines.native.rest.source import is_rest_source

__all__ = ["check_rest", "is_rest_source", "read_rest"]
