"""An independent reader of our Iceberg tables: DuckDB 1.5 with its iceberg extension, both from PyPI, in their own
venv under the test cache (made once per machine, under a lock), queried in a subprocess.

The package's own DuckDB (2.x) cannot fetch the iceberg extension offline; PyPI carries it, with the avro
extension it needs, as ``duckdb-extension-iceberg`` / ``duckdb-extension-avro`` for DuckDB 1.5 only. The README's
"Reading the tables with another engine" section shows the same three lines.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.stand_ins import CACHE, cached_venv

DUCKDB_VERSION = "1.5.5"
PACKAGES = [f"duckdb=={DUCKDB_VERSION}", f"duckdb-extension-iceberg=={DUCKDB_VERSION}",
            f"duckdb-extension-avro=={DUCKDB_VERSION}"]
_QUERY = """
import glob, importlib, json, os, sys
import duckdb
con = duckdb.connect()
for name in ("avro", "iceberg"):  # iceberg needs avro; both from their PyPI wheels, no download
    folder = os.path.dirname(importlib.import_module("duckdb_extension_" + name).__file__)
    con.install_extension(glob.glob(os.path.join(folder, "extensions", "*", name + ".duckdb_extension"))[0])
    con.load_extension(name)
print(json.dumps(con.sql(sys.argv[1]).fetchall(), default=str))
"""


def reader_python() -> Path:
    """The python of the reader's venv (made on first use)."""
    return cached_venv(f"duckdb-iceberg-{DUCKDB_VERSION}", PACKAGES)


def current_metadata(table_location: Path) -> Path:
    """The newest ``metadata/*.metadata.json`` of a table folder (what ``iceberg_scan`` reads)."""
    found = sorted((table_location / "metadata").glob("*.metadata.json"), key=lambda p: int(p.name.split("-")[0]))
    if not found:
        raise FileNotFoundError(f"no metadata under {table_location}")
    return found[-1]


def duckdb_query(sql: str, *, home: Path | None = None) -> list[list[Any]]:
    """Rows of ``sql`` run by DuckDB 1.5 with the iceberg extension (``iceberg_scan('<metadata.json>')``)."""
    duckdb_home = CACHE / "duckdb-home"  # where DuckDB keeps installed extensions: not the user's ~/.duckdb
    duckdb_home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(reader_python()), "-c", _QUERY, sql], capture_output=True, text=True, timeout=600,
                         cwd=home or Path.cwd(), env={"HOME": str(duckdb_home), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise RuntimeError(f"DuckDB failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)
