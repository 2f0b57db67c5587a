"""Sinks: where staged rows are committed together with their state.

``base.py`` the Sink contract and its one commit loop; ``factory.py`` ``open_sink(plan)``; ``layout.py`` the
names a job's target shows; ``iceberg/`` Iceberg tables; ``files/`` plain files with run manifests; ``database/``
database tables with a state table;
``checks.py`` the reachability probes of a preflight."""
