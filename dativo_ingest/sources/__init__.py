"""Native extractors yielding Arrow batches."""
