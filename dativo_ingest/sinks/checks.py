"""Can a target's object store be reached, does its bucket exist, are the credentials accepted, may we write?

Run by each sink's ``preflight`` (from ``startup_sequence()``, before a single row is read). Each failure is one
``InfrastructureError`` line naming the job, the config field, the bucket and endpoint, and the fix — never a
credential. The write check puts one empty probe object under the target's prefix and deletes it again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from pyarrow import fs as pafs

from dativo_ingest.errors import InfrastructureError
from dativo_ingest.logs import redact
from dativo_ingest.sinks.iceberg.catalog import CatalogChoice
from dativo_ingest.storage.stores import CONNECT_TIMEOUT_S, ObjectStore

log = logging.getLogger(__name__)

PROBE_PREFIX = "_dativo_write_check-"
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                    "AuthorizationHeaderMalformed", "InvalidClientTokenId", "UnrecognizedClientException"}
_MISSING_BUCKET = {"NoSuchBucket", "404", "NotFound"}
_SECRET_PROPERTIES = {"credential", "token", "s3.secret-access-key", "s3.session-token", "adls.account-key",
                      "client.secret-access-key", "glue.secret-access-key", "rest.secret-access-key"}
_AZ_CODE = re.compile(r"Azure Error: \[(\w*)\]\s*(\d{3})?")


def check_catalog(choice: CatalogChoice, job_path: Path | None = None) -> None:
    """Can the warehouse's object store be written, and does a configured (not embedded) catalog answer?"""
    if choice.store is not None:
        check_store(choice.store, job_path)
    if choice.kind == "embedded":
        _check_embedded_database(choice)
        return
    redact.add(v for k, v in choice.properties.items() if k in _SECRET_PROPERTIES)
    try:
        choice.open().list_namespaces()
    except Exception as exc:  # any failure to reach or use the catalog is one line
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InfrastructureError(redact(
            f"{job_path}: {choice.where}: cannot use the {choice.kind} catalog at "
            f"{choice.properties.get('uri') or choice.name}: {type(exc).__name__}: {first} "
            f"(check {choice.where}.uri and its credential; NESSIE_URI / ICEBERG_REST_CREDENTIAL in the secrets)"
        )) from None


def _check_embedded_database(choice: CatalogChoice) -> None:
    """An existing embedded catalog database must be readable (read only: ``check`` creates nothing)."""
    uri = str(choice.properties.get("uri") or "")
    path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if path is None or not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        raise choice.unreadable(exc) from None


def _error(job_path: Path | str | None, store: ObjectStore, problem: str, fix: str) -> InfrastructureError:
    head = f"{job_path}: " if job_path else ""
    return InfrastructureError(redact(f"{head}{store.where}: {problem}: {store.describe()} ({fix})"))


def _endpoint_field(store: ObjectStore) -> str:
    return f"{store.where}.endpoint"


def check_store(store: ObjectStore, job_path: Path | str | None = None) -> None:
    """Raise ``InfrastructureError`` unless the store answers, the bucket exists, and a probe write succeeds."""
    redact.add(store.secrets())
    if store.kind == "s3":
        _check_s3(store, job_path)
    elif store.kind == "azure":
        _check_azure(store, job_path)
    else:
        _check_local(store, job_path)


# -- S3 -----------------------------------------------------------------------------------------------------


def s3_client(store: ObjectStore) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"},
                    s3={"addressing_style": "path" if store.path_style else "virtual"})
    return boto3.client(
        "s3", endpoint_url=store.endpoint or None, region_name=store.region or None,
        aws_access_key_id=store.access_key_id or None, aws_secret_access_key=store.secret_access_key or None,
        aws_session_token=store.session_token or None, config=config,
    )


def _check_s3(store: ObjectStore, job_path: Path | str | None) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if store.endpoint and not (store.access_key_id and store.secret_access_key):
        raise _error(job_path, store, "no credentials for a custom endpoint",
                     f"set access_key_id and secret_access_key in {store.where} (e.g. from AWS_ACCESS_KEY_ID / "
                     "AWS_SECRET_ACCESS_KEY in the tenant's secrets)")
    client = s3_client(store)
    probe = store.key(f"{PROBE_PREFIX}{uuid.uuid4().hex}")
    step = "list"
    try:
        client.list_objects_v2(Bucket=store.bucket, Prefix=store.key() + "/" if store.prefix else "", MaxKeys=1)
        step = "write"
        client.put_object(Bucket=store.bucket, Key=probe, Body=b"")
        step = "delete"
        client.delete_object(Bucket=store.bucket, Key=probe)
    except EndpointConnectionError:
        raise _error(job_path, store, "cannot reach the object store",
                     f"start it, or correct {_endpoint_field(store)}") from None
    except NoCredentialsError:
        raise _error(job_path, store, "no credentials found",
                     f"set access_key_id and secret_access_key in {store.where}") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
        if code in _MISSING_BUCKET:
            raise _error(job_path, store, "the bucket does not exist",
                         f"create it (e.g. `aws s3 mb s3://{store.bucket}` or `mc mb local/{store.bucket}`), "
                         f"or correct {store.where}.bucket") from None
        if code in _BAD_CREDENTIALS:
            raise _error(job_path, store, f"the credentials were refused ({code})",
                         f"check access_key_id / secret_access_key in {store.where}") from None
        if step == "delete":
            log.warning("could not delete the write-check object %s (%s); overwrite and merge need deletes",
                        probe, code)
            return
        action = {"list": "listing", "write": "writing"}[step]
        raise _error(job_path, store, f"{action} under '{store.key() or '/'}' was denied ({code})",
                     f"grant s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on "
                     f"{store.url()} to these credentials") from None
    except BotoCoreError as exc:
        raise _error(job_path, store, f"cannot reach the object store ({type(exc).__name__})",
                     f"start it, or correct {_endpoint_field(store)}") from None


# -- Azure Blob ---------------------------------------------------------------------------------------------


def _azure_failure(exc: OSError, store: ObjectStore, job_path: Path | str | None, action: str) -> InfrastructureError:
    text = str(exc)
    m = _AZ_CODE.search(text)
    code, status = (m.group(1), m.group(2)) if m else ("", None)
    if "connect" in text.lower() and not status:
        return _error(job_path, store, "cannot reach the Blob service",
                      f"start it, or correct {_endpoint_field(store)} (AZURE_STORAGE_ENDPOINT)")
    if code in ("AuthenticationFailed", "AuthorizationFailure") or status == "401":
        return _error(job_path, store, f"the credentials were refused ({code or status})",
                      f"check account_name / account_key in {store.where}")
    if code == "ContainerNotFound" or status == "404":
        return _error(job_path, store, "the container does not exist",
                      f"create it (e.g. `az storage container create -n {store.bucket}`), "
                      f"or correct {store.where}.container")
    return _error(job_path, store, f"{action} was denied ({code or status or text.splitlines()[0][:120]})",
                  f"grant read, write, list and delete on the container to account '{store.account_name}'")


def _check_azure(store: ObjectStore, job_path: Path | str | None) -> None:
    if not store.account_key:
        raise _error(job_path, store, "no account_key",
                     f"set account_key in {store.where} (AZURE_STORAGE_ACCOUNT_KEY in the tenant's secrets)")
    fs = store.filesystem
    try:
        info = fs.get_file_info(store.bucket)
    except OSError as exc:
        raise _azure_failure(exc, store, job_path, "reading the container") from None
    if info.type == pafs.FileType.NotFound:
        raise _error(job_path, store, "the container does not exist",
                     f"create it (e.g. `az storage container create -n {store.bucket}`), "
                     f"or correct {store.where}.container")
    probe = store.fs_path(f"{PROBE_PREFIX}{uuid.uuid4().hex}")
    try:
        with fs.open_output_stream(probe) as out:
            out.write(b"")
        fs.delete_file(probe)
    except OSError as exc:
        raise _azure_failure(exc, store, job_path, f"writing under '{store.key() or '/'}'") from None


# -- local folder -------------------------------------------------------------------------------------------


def _check_local(store: ObjectStore, job_path: Path | str | None) -> None:
    root = Path(store.fs_path())
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _error(job_path, store, f"not writable ({exc.strerror})",
                     f"choose a writable folder in {store.where}") from None
