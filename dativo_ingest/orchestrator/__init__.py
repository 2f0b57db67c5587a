"""Orchestrated mode: ``configs/runner.yaml`` → Dagster definitions, and ``dativo_ingest start orchestrated``.

``config`` (the runner model) imports nothing from Dagster, so ``run --job-dir`` and the schema export work
without the ``orchestrated`` extra; ``build``, ``definitions``, ``instance`` and ``service`` need Dagster.
"""
