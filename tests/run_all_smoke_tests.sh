#!/usr/bin/env bash
# The seed guide's smoke tests: creates the demo tables the example jobs read (data/sql/*.sql, in the machine's
# PostgreSQL and MariaDB), starts the local stand-ins the jobs need (SeaweedFS for S3 jobs: tests/smoke/services.py),
# runs every job under jobs/ once and prints one line per job, then "N passed, M failed".
#   ./tests/run_all_smoke_tests.sh [--keep] [JOB ...]      (JOB: only job files whose path contains it)
# Uses .venv/bin/python when it exists (the README's first line makes it), else $PYTHON, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import dativo_ingest" 2>/dev/null; then
  echo "dativo_ingest is not installed for $PYTHON: run the README's first line first" >&2
  exit 2
fi
exec "$PYTHON" -m tests.smoke "$@"
