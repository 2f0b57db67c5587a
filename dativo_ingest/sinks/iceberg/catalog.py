"""Which Iceberg catalog a job writes to, and where its warehouse is.

In order:

1. ``target.catalog`` — any pyiceberg catalog (``type: sql|rest|glue|…`` plus its properties);
2. ``target.connection.catalog.uri`` (the iceberg recipe fills it from ``NESSIE_URI``) — a REST catalog;
3. otherwise the embedded ``SqlCatalog`` on SQLite at ``$DATIVO_HOME/catalog.db``, its warehouse at
   ``target.warehouse``, else in the object store of ``target.connection.s3|minio|azure_blob`` (under its
   ``prefix``, default ``warehouse``), else ``$DATIVO_HOME/warehouse``.

The object store's endpoint and credentials become the catalog's FileIO properties in every case, so a REST
catalog whose tables live in MinIO/SeaweedFS needs nothing more. A Nessie URI of its native API
(``http://host:19120/api/v1``) is turned into its Iceberg REST endpoint (``/iceberg/<branch>``), with the branch
from ``target.branch`` (or the catalog's ``ref``/``branch``). Glue (``type: glue``) is passed to pyiceberg as
configured: it is not tested here.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.catalog import Catalog

from dativo_ingest.config.models import JobTarget
from dativo_ingest.errors import ConfigError, InfrastructureError
from dativo_ingest.paths import dativo_home
from dativo_ingest.storage.stores import ObjectStore, chosen_store, nested_store, store_from_url

log = logging.getLogger(__name__)

EMBEDDED_CATALOG_NAME = "dativo"
DEFAULT_WAREHOUSE_PREFIX = "warehouse"
_NESSIE_API = re.compile(r"^(?P<base>.+?)/api/v[12]/?$")
_NESSIE_ICEBERG = re.compile(r"^(?P<base>.+?)/iceberg(?:/(?P<ref>[^/]+))?/?$")


@dataclass
class CatalogChoice:
    """Which catalog a job writes to: its name, pyiceberg properties and warehouse store."""

    name: str
    properties: dict[str, str]
    #: the object store holding the warehouse (None: local folder, or the REST server decides)
    store: ObjectStore | None
    #: "embedded", or the configured catalog's type
    kind: str
    #: the config field that chose it, for messages
    where: str = "target"

    def open(self) -> Catalog:
        """Load the pyiceberg catalog (the embedded one creates its SQLite tables on first use)."""
        from pyiceberg.catalog import load_catalog

        try:
            try:
                return load_catalog(self.name, **self.properties)
            except Exception as exc:  # another run created the SqlCatalog's tables at the same moment: they exist
                if "already exists" not in str(exc):
                    raise
                return load_catalog(self.name, **self.properties)
        except Exception as exc:
            if not is_catalog_database_error(exc):
                raise
            raise self.unreadable(exc) from None

    def unreadable(self, exc: BaseException) -> InfrastructureError:
        """The one line for a catalog whose database cannot be read (corrupt, not a database, locked away)."""
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return InfrastructureError(f"{self.describe()}: the catalog database cannot be read ({first}) — restore it "
                                   "from a backup, or move it away to start an empty catalog (tables must then be "
                                   "registered or loaded again)")

    def describe(self) -> str:
        """The catalog, for messages."""
        if self.kind == "embedded":
            return f"embedded catalog {self.properties['uri']} (warehouse {self.properties['warehouse']})"
        return f"{self.kind} catalog {self.properties.get('uri') or self.name}"


def embedded_catalog_properties() -> dict[str, str]:
    """``SqlCatalog`` on SQLite at ``$DATIVO_HOME/catalog.db``, warehouse ``$DATIVO_HOME/warehouse``."""
    home = dativo_home()
    (home / "warehouse").mkdir(parents=True, exist_ok=True)
    return {
        "type": "sql",
        "uri": f"sqlite:///{home / 'catalog.db'}",
        "warehouse": f"file://{home / 'warehouse'}",
    }


def _spec(target: JobTarget) -> tuple[dict[str, str] | None, str]:
    where = "target.catalog"
    spec = {k: str(v) for k, v in (target.catalog_spec or {}).items() if v is not None and str(v) != ""}
    if not spec:
        conn = target.connection_values.get("catalog")
        if isinstance(conn, dict) and str(conn.get("uri") or ""):
            where = "target.connection.catalog"
            spec = {"type": "rest", **{k: str(v) for k, v in conn.items() if v is not None and str(v) != ""}}
    if not spec:
        return None, where
    if "type" not in spec:
        if "uri" not in spec:
            raise ConfigError(None, "has no 'type'", field="target.catalog", fix="set type: sql|rest|glue")
        spec["type"] = "rest"
    return spec, where


def nessie_rest_uri(uri: str, branch: str | None) -> str:
    """``http://h:19120/api/v1`` → ``http://h:19120/iceberg/`` (+ ``<branch>``); other URIs unchanged."""
    m = _NESSIE_API.match(uri)
    if m:
        return f"{m.group('base')}/iceberg/{branch}" if branch else f"{m.group('base')}/iceberg/"
    m = _NESSIE_ICEBERG.match(uri)
    if m and branch and not m.group("ref"):
        return f"{m.group('base')}/iceberg/{branch}"
    return uri


def choose_catalog(target: JobTarget, job_path: Path | None = None) -> CatalogChoice:
    """The catalog name, pyiceberg properties and warehouse store for a job's merged ``target`` section."""
    spec, where = _spec(target)
    storage = target.storage
    if spec is not None and storage is None:  # the catalog decides where tables go; a store block gives credentials
        store = nested_store(target.connection, job_path, require_bucket=False)
    else:
        store = chosen_store(target.connection, storage, job_path, require_bucket=spec is None)
    io_props = store.iceberg_properties() if store is not None else {}
    if spec is not None:
        kind = spec["type"].lower()
        props = {**io_props, **{k: v for k, v in spec.items() if k != "name"}}
        if kind == "rest":
            branch = str(target.branch or spec.get("branch") or spec.get("ref") or "") or None
            props["uri"] = nessie_rest_uri(props.get("uri", ""), branch)
            if props.get("credential") and "oauth2-server-uri" not in props:  # the spec's default, said out loud
                props["oauth2-server-uri"] = props["uri"].rstrip("/") + "/v1/oauth/tokens"
            for key in ("branch", "ref"):
                props.pop(key, None)
        warehouse_store = store if store is not None and store.bucket else None
        if kind == "sql" and props.get("warehouse"):
            warehouse_store = store_from_url(props["warehouse"], store, f"{where}.warehouse")
        return CatalogChoice(spec.get("name") or EMBEDDED_CATALOG_NAME, props, warehouse_store, kind, where)
    props = embedded_catalog_properties()
    warehouse = str(target.warehouse or "")
    if warehouse:
        store = store_from_url(warehouse, store, "target.warehouse")
    elif store is not None:
        store = store if store.prefix else store.at(DEFAULT_WAREHOUSE_PREFIX)
    if store is None or store.kind == "local":
        if store is not None:
            props["warehouse"] = store.url()
            Path(store.fs_path()).mkdir(parents=True, exist_ok=True)
        return CatalogChoice(EMBEDDED_CATALOG_NAME, props, store, "embedded")
    props.update(store.iceberg_properties())
    props["warehouse"] = store.url()
    # one catalog name per warehouse: the same job pointed at another store gets its own tables
    return CatalogChoice(f"{EMBEDDED_CATALOG_NAME}@{props['warehouse']}", props, store, "embedded")


def is_catalog_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the catalog's SQL database is unreadable (SQLAlchemy's DatabaseError family)."""
    return any(cls.__name__ in ("DatabaseError", "OperationalError") and cls.__module__.startswith(("sqlalchemy",
                                                                                                    "sqlite3"))
               for cls in type(exc).__mro__)


__all__ = ["CatalogChoice", "choose_catalog", "is_catalog_database_error"]
