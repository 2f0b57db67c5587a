"""How a connector process is started: ``venv`` (installed from PyPI), ``docker`` (an image), ``local`` (a path).

Every launcher returns a :class:`~dativo_ingest.engines.launchers.base.ConnectorProcess`; engines never care which.
"""

from dativo_ingest.engines.launchers.base import ConnectorProcess, Launcher
from dativo_ingest.engines.launchers.local import LocalLauncher
from dativo_ingest.engines.launchers.venv import VenvLauncher

__all__ = ["ConnectorProcess", "Launcher", "LocalLauncher", "VenvLauncher"]
