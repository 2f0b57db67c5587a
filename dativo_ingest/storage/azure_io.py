"""pyiceberg's pyarrow FileIO for Azure, reading ``abfs://container@account.dfs.core.windows.net/path`` right.

pyiceberg 0.12 hands pyarrow's AzureFileSystem ``container@account.dfs.core.windows.net/path`` for such a
location, which Azure rejects (the container name is the part before ``@``). This FileIO passes
``container/path``; everything else is pyiceberg's ``PyArrowFileIO``. Table metadata keeps the standard URLs,
so Spark, Trino or pyiceberg with adlfs read the same tables.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.typedef import EMPTY_DICT, Properties

AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")


class AzureFileIO(PyArrowFileIO):
    @staticmethod
    def parse_location(location: str, properties: Properties = EMPTY_DICT) -> tuple[str, str, str]:
        scheme, netloc, path = PyArrowFileIO.parse_location(location, properties)
        if scheme in AZURE_SCHEMES and "@" in netloc:
            return scheme, netloc, netloc.split("@", 1)[0] + urlparse(location).path
        return scheme, netloc, path
