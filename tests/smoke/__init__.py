"""``./tests/run_all_smoke_tests.sh``: every job under ``jobs/`` run once against real servers, one line each.

- ``demo_tables``: creates (idempotently) the tables the example jobs read, from ``data/sql/*.sql``;
- ``stand_ins``: starts the local servers the jobs need (SeaweedFS for S3), chosen by each job's connectors;
- ``run``: runs every job with the CLI and prints ``PASS``/``FAIL`` per job and ``N passed, M failed``.

Nothing here needs pytest: the script runs after the README's first line (``pip install -e .``).
"""
