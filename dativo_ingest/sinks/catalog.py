"""Which Iceberg catalog a job writes to: the embedded default, or the one the target names."""

from __future__ import annotations

import logging
from typing import Any

from pyiceberg.catalog import Catalog

from dativo_ingest.errors import ConfigError
from dativo_ingest.paths import dativo_home

log = logging.getLogger(__name__)

EMBEDDED_CATALOG_NAME = "dativo"


def embedded_catalog_properties() -> dict[str, str]:
    """``SqlCatalog`` on SQLite at ``$DATIVO_HOME/catalog.db``, warehouse ``$DATIVO_HOME/warehouse``."""
    home = dativo_home()
    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    return {
        "type": "sql",
        "uri": f"sqlite:///{home / 'catalog.db'}",
        "warehouse": f"file://{home / 'warehouse'}",
    }


def catalog_properties(target: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The catalog name and pyiceberg properties for a job's merged ``target`` section."""
    spec = target.get("catalog")
    if not spec:
        return EMBEDDED_CATALOG_NAME, embedded_catalog_properties()
    if not isinstance(spec, dict):
        raise ConfigError(None, "must be a mapping with a 'type'", field="target.catalog",
                          fix="e.g. catalog: {type: sql, uri: sqlite:///cat.db, warehouse: file:///lake}")
    props = {k: str(v) for k, v in spec.items() if k not in ("name",) and v is not None}
    if "type" not in props:
        raise ConfigError(None, "has no 'type'", field="target.catalog", fix="set type: sql|rest|glue")
    return str(spec.get("name") or EMBEDDED_CATALOG_NAME), props


def open_catalog(target: dict[str, Any]) -> Catalog:
    from pyiceberg.catalog import load_catalog

    name, props = catalog_properties(target)
    return load_catalog(name, **props)
