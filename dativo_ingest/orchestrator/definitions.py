"""``dativo_ingest.orchestrator.definitions:defs`` — the Dagster definitions of ``$DATIVO_RUNNER_CONFIG``.

Point any Dagster deployment at this attribute (``workspace.yaml``: ``python_module`` with
``module_name: dativo_ingest.orchestrator.definitions`` and ``attribute: defs``) with
``DATIVO_RUNNER_CONFIG`` set to the runner file (default ``configs/runner.yaml`` in the working directory).
"""

from dativo_ingest.orchestrator.build import definitions_from_env

defs = definitions_from_env()
