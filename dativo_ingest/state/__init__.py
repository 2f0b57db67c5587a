"""State: the envelope committed in the Iceberg snapshot, its mirror, show/reset."""
