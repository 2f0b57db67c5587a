"""Where a target's bytes go: an S3 bucket (AWS, MinIO, SeaweedFS), an Azure Blob container, or a local folder.

One ``ObjectStore`` value, parsed from a job's merged ``target.connection`` in either of the original project's
forms: nested (``connection.s3{…}``, ``connection.minio{…}``, ``connection.azure_blob{…}``) or flat (the keys
directly under ``connection``, as the MinIO/S3 recipes write them). It gives a pyarrow filesystem (plain-file
targets) and pyiceberg FileIO properties (Iceberg warehouses on object storage). Empty values mean "not set".
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyarrow import fs as pafs

from dativo_ingest.errors import ConfigError

S3_KINDS = ("s3", "minio")
STORE_KINDS = ("s3", "minio", "azure_blob")
AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")
DEFAULT_REGION = "us-east-1"
#: how long a store may take to answer before the check or the run says it is unreachable
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
AZURE_IO_IMPL = "dativo_ingest.storage.azure_io.AzureFileIO"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _flag(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _check_segments(path: str, where: str) -> None:
    """No ``.``/``..`` segment and no backslash: a key built from config never leaves its root folder or prefix."""
    if not path:
        return
    if "\\" in path or any(seg in (".", "..") for seg in path.split("/")):
        raise ConfigError(None, f"'{path}' would leave its folder ('.', '..' or '\\' in a path segment)",
                          field=where, fix="use plain folder names")


@dataclass(frozen=True)
class ObjectStore:
    """A bucket (or container, or folder) plus a key prefix inside it, and how to reach it."""

    #: ``s3`` (any S3 API), ``azure`` or ``local``
    kind: str
    #: the config field it came from, for messages: ``target.connection.s3``
    where: str
    #: S3 bucket or Azure container; for ``local`` the absolute root folder
    bucket: str
    #: key prefix inside the bucket, without leading or trailing ``/``
    prefix: str = ""
    #: S3 endpoint URL (empty: AWS) or Azure blob endpoint URL (empty: ``<account>.blob.core.windows.net``)
    endpoint: str = ""
    region: str = ""
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    path_style: bool = True
    account_name: str = ""
    account_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        _check_segments(self.prefix, f"{self.where}.prefix")

    # -- naming ------------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        """A key under the prefix (no bucket): ``raw/csv/person/x.parquet``; no part may leave the prefix."""
        for part in parts:
            _check_segments(part, self.where)
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def fs_path(self, *parts: str) -> str:
        """The path the pyarrow filesystem takes: ``bucket/prefix/…`` (or ``/abs/root/prefix/…`` for local)."""
        key = self.key(*parts)
        if self.kind == "local":
            return str(Path(self.bucket, key)) if key else self.bucket
        return f"{self.bucket}/{key}" if key else self.bucket

    def url(self, *parts: str) -> str:
        """The URL a reader uses: ``s3://bucket/prefix/…``, ``abfs://container@account.dfs.core.windows.net/…``."""
        key = self.key(*parts)
        if self.kind == "s3":
            return f"s3://{self.bucket}/{key}".rstrip("/")
        if self.kind == "azure":
            return f"abfs://{self.bucket}@{self.account_name}.dfs.core.windows.net/{key}".rstrip("/")
        return Path(self.fs_path(*parts)).as_uri()

    def at(self, *parts: str) -> ObjectStore:
        """The same store with the prefix extended."""
        return replace(self, prefix=self.key(*parts))

    def describe(self) -> str:
        """Where, for one-line messages (never a credential)."""
        if self.kind == "s3":
            return f"bucket '{self.bucket}' at {self.endpoint or 'AWS S3'}"
        if self.kind == "azure":
            return f"container '{self.bucket}' of account '{self.account_name}' at {self.blob_endpoint()}"
        return f"folder {self.bucket}"

    def blob_endpoint(self) -> str:
        return self.endpoint or f"https://{self.account_name}.blob.core.windows.net"

    # -- clients -----------------------------------------------------------------------------
    @cached_property
    def filesystem(self) -> pafs.FileSystem:
        """A pyarrow filesystem for this store (S3FileSystem, AzureFileSystem or LocalFileSystem)."""
        if self.kind == "s3":
            parsed = urlparse(self.endpoint) if self.endpoint else None
            return pafs.S3FileSystem(
                access_key=self.access_key_id or None,
                secret_key=self.secret_access_key or None,
                session_token=self.session_token or None,
                region=self.region or DEFAULT_REGION,
                endpoint_override=parsed.netloc if parsed else None,
                scheme=parsed.scheme if parsed else "https",
                force_virtual_addressing=not self.path_style,
                connect_timeout=CONNECT_TIMEOUT_S,
                request_timeout=REQUEST_TIMEOUT_S,
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
                allow_bucket_creation=False,
                allow_bucket_deletion=False,
            )
        if self.kind == "azure":
            kwargs: dict[str, Any] = {"account_name": self.account_name}
            if self.account_key:
                kwargs["account_key"] = self.account_key
            if self.endpoint:
                parsed = urlparse(self.endpoint)
                kwargs.update(blob_storage_authority=parsed.netloc, blob_storage_scheme=parsed.scheme or "https",
                              dfs_storage_authority=parsed.netloc, dfs_storage_scheme=parsed.scheme or "https")
            return pafs.AzureFileSystem(**kwargs)
        return pafs.LocalFileSystem()

    def iceberg_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties for a warehouse in this store."""
        props: dict[str, str] = {}
        if self.kind == "s3":
            props.update({"s3.region": self.region or DEFAULT_REGION,
                          "s3.force-virtual-addressing": "false" if self.path_style else "true"})
            if self.endpoint:
                props["s3.endpoint"] = self.endpoint
            if self.access_key_id:
                props["s3.access-key-id"] = self.access_key_id
            if self.secret_access_key:
                props["s3.secret-access-key"] = self.secret_access_key
            if self.session_token:
                props["s3.session-token"] = self.session_token
        elif self.kind == "azure":
            props.update({"py-io-impl": AZURE_IO_IMPL, "adls.account-name": self.account_name})
            if self.account_key:
                props["adls.account-key"] = self.account_key
            if self.endpoint:
                parsed = urlparse(self.endpoint)
                props.update({"adls.blob-storage-authority": parsed.netloc,
                              "adls.blob-storage-scheme": parsed.scheme or "https",
                              "adls.dfs-storage-authority": parsed.netloc,
                              "adls.dfs-storage-scheme": parsed.scheme or "https"})
        return props

    def secrets(self) -> list[str]:
        return [v for v in (self.secret_access_key, self.session_token, self.account_key) if v]


# -- parsing ---------------------------------------------------------------------------------------------


def _endpoint(value: str, secure: Any) -> str:
    """``localhost:9000`` + ``secure: false`` → ``http://localhost:9000``; a URL stays as it is."""
    value = value.rstrip("/")
    if value and "://" not in value:
        value = ("https://" if _flag(secure, True) else "http://") + value
    return value


def s3_store(block: dict[str, Any], where: str, job_path: Path | None = None, *,
             require_bucket: bool = True) -> ObjectStore:
    bucket = _text(block.get("bucket"))
    if not bucket and require_bucket:
        raise ConfigError(job_path, "no bucket", field=f"{where}.bucket",
                          fix="set bucket (or S3_BUCKET in the tenant's secrets)")
    if "/" in bucket:  # "bucket/some/prefix" written as the bucket
        bucket, _, extra = bucket.partition("/")
        block = {**block, "prefix": posixpath.join(extra, _text(block.get("prefix")))}
    endpoint = _endpoint(_text(block.get("endpoint") or block.get("endpoint_url")), block.get("secure"))
    return ObjectStore(
        kind="s3", where=where, bucket=bucket, prefix=_text(block.get("prefix")).strip("/"), endpoint=endpoint,
        region=_text(block.get("region")) or DEFAULT_REGION,
        access_key_id=_text(block.get("access_key_id") or block.get("aws_access_key_id")),
        secret_access_key=_text(block.get("secret_access_key") or block.get("aws_secret_access_key")),
        session_token=_text(block.get("session_token") or block.get("aws_session_token")),
        # a custom endpoint (MinIO, SeaweedFS) wants path-style addressing unless told otherwise
        path_style=_flag(block.get("path_style_access"), bool(endpoint)),
    )


def azure_store(block: dict[str, Any], where: str, job_path: Path | None = None, *,
                require_bucket: bool = True) -> ObjectStore:
    container = _text(block.get("container"))
    account = _text(block.get("account_name"))
    if not container and require_bucket:
        raise ConfigError(job_path, "no container", field=f"{where}.container",
                          fix="set container (or AZURE_STORAGE_CONTAINER in the tenant's secrets)")
    if not account:
        raise ConfigError(job_path, "no account_name", field=f"{where}.account_name",
                          fix="set account_name (or AZURE_STORAGE_ACCOUNT_NAME in the tenant's secrets)")
    endpoint = _endpoint(_text(block.get("endpoint") or block.get("blob_endpoint")), block.get("secure"))
    if endpoint:  # Azurite's form http://127.0.0.1:10000/<account>: the account is not part of the authority
        parsed = urlparse(endpoint)
        endpoint = f"{parsed.scheme}://{parsed.netloc}"
    return ObjectStore(kind="azure", where=where, bucket=container, prefix=_text(block.get("prefix")).strip("/"),
                       endpoint=endpoint, account_name=account, account_key=_text(block.get("account_key")))


def local_store(root: str | Path, where: str, prefix: str = "") -> ObjectStore:
    return ObjectStore(kind="local", where=where, bucket=str(Path(root).resolve()), prefix=prefix.strip("/"))


def in_use(block: Any) -> bool:
    """A store block counts when it names a bucket, container or endpoint (recipes leave them empty)."""
    return isinstance(block, dict) and any(_text(block.get(k)) for k in ("bucket", "endpoint", "container"))


def _flat(connection: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in connection.items() if not isinstance(v, dict)}


def store_block(connection: dict[str, Any], kind: str) -> dict[str, Any]:
    """The keys of one store: the flat keys of ``connection`` overlaid by ``connection.<kind>{…}``."""
    nested = connection.get(kind)
    if kind == "minio" and not isinstance(nested, dict):
        nested = connection.get("s3")
    return {**_flat(connection), **(nested if isinstance(nested, dict) else {})}


def make_store(kind: str, block: dict[str, Any], where: str, job_path: Path | None = None, *,
               require_bucket: bool = True) -> ObjectStore:
    if kind in S3_KINDS:
        return s3_store(block, where, job_path, require_bucket=require_bucket)
    if kind == "azure_blob":
        return azure_store(block, where, job_path, require_bucket=require_bucket)
    raise ConfigError(job_path, f"unknown object store '{kind}'", field=where, fix="use s3, minio or azure_blob")


def nested_store(connection: dict[str, Any] | None, job_path: Path | None = None, *,
                 require_bucket: bool = True) -> ObjectStore | None:
    """The store an Iceberg target's warehouse lives in: ``connection.s3|minio|azure_blob{…}`` that is in use
    (``require_bucket=False`` when a REST catalog decides the bucket and only the endpoint/credentials matter)."""
    connection = connection or {}
    used = [k for k in STORE_KINDS if in_use(connection.get(k))]
    if not used:
        return None
    if len(used) > 1:
        raise ConfigError(job_path, f"both target.connection.{used[0]} and target.connection.{used[1]} name a "
                          "store", field="target.connection", fix="keep one (clear the other's bucket/container)")
    kind = used[0]
    return make_store(kind, connection[kind], f"target.connection.{kind}", job_path, require_bucket=require_bucket)


#: ``target.storage`` → the connection blocks that describe that store (the first one given is used)
STORAGE_BLOCKS = {"s3": ("s3", "minio"), "azure": ("azure_blob",)}


def chosen_store(connection: dict[str, Any] | None, storage: str | None, job_path: Path | None = None, *,
                 require_bucket: bool = True) -> ObjectStore | None:
    """The object store ``target.storage`` names — ``s3`` is ``connection.s3`` (or ``minio``), ``azure`` is
    ``connection.azure_blob`` — or None for ``local`` (or none given): whatever other blocks hold, set by
    variables or not, chooses nothing."""
    if storage in (None, "local"):
        return None
    if storage not in STORAGE_BLOCKS:
        raise ConfigError(job_path, f"unknown storage '{storage}'", field="target.storage",
                          fix="use local, s3 or azure")
    connection = connection or {}
    names = STORAGE_BLOCKS[storage]
    kind = next((k for k in names if isinstance(connection.get(k), dict)), names[0])
    return make_store(kind, dict(connection.get(kind) or {}), f"target.connection.{kind}", job_path,
                      require_bucket=require_bucket)


def store_from_url(url: str, template: ObjectStore | None, where: str) -> ObjectStore:
    """A warehouse URL (``s3://bucket/prefix``, ``abfs://container@account…/prefix``, a folder) as a store,
    with the credentials and endpoint of ``template`` when it is of the same kind."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("s3", "s3a", "s3n"):
        base = template if template is not None and template.kind == "s3" else ObjectStore("s3", where, "")
        return replace(base, where=where, bucket=parsed.netloc, prefix=parsed.path.strip("/"))
    if scheme in AZURE_SCHEMES:
        container, _, host = parsed.netloc.partition("@")
        base = template if template is not None and template.kind == "azure" else ObjectStore("azure", where, "")
        account = host.split(".")[0] if host else base.account_name
        return replace(base, where=where, bucket=container, account_name=account, prefix=parsed.path.strip("/"))
    if scheme in ("", "file"):
        return local_store(parsed.path if scheme else url, where)
    raise ConfigError(None, f"cannot read warehouse URL '{url}'", field=where,
                      fix="use s3://bucket/prefix, abfs://container@account.dfs.core.windows.net/prefix or a folder")
