"""Native REST API sources: a recipe's ``api:`` section describes the API (auth, streams, pagination,
incremental parameters, child streams); pages become Arrow batches typed by the asset, with the read's
position committed with the data. See ``spec.py`` for the vocabulary and ``reader.py`` for the state.

Nothing is imported here, so a job that is not a REST source never loads the HTTP stack: ``sources.has_api``
tells, then ``check.check_rest`` / ``reader.read_rest`` do the work."""
