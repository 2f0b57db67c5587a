"""``python -m tests.smoke``: what ./tests/run_all_smoke_tests.sh runs."""

from tests.smoke.run import main

raise SystemExit(main())
