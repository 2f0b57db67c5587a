"""The run manifest of a plain-file dataset: the list of live files and the committed state, written last.

A dataset folder (``<prefix>/<domain>/<dataProduct>/<asset>/``) holds data files under ``ingest_date=…/`` and
manifests under ``_manifests/<sequence>-<run_id>.json``. A commit writes its data files first and its manifest
last, in one object PUT (a rename on a local disk), so a manifest is either complete or absent. The newest
manifest (highest sequence) is the dataset: its ``files`` are the live data files (paths relative to the
dataset folder) and its ``state`` is the state envelope the next run starts from. Files that no manifest lists
are leftovers of a run that died (deleted on abort when it can) and are never read.

Object stores offer no "create if absent" through pyarrow, so two runs that read the same newest manifest at
the same moment may both publish the next sequence. A run lists the manifests again after publishing; one that
finds another manifest of its sequence withdraws its own (and retries on the new head), so at most one stays
unless a run dies between publishing and listing; then the name that sorts last is the dataset, as readers
see it. A commit built on a manifest that is withdrawn later is not detected (three runs racing within one
listing's round trip): a conditional create in the store is what would close that gap.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from pyarrow import fs as pafs

from dativo_ingest.errors import InfrastructureError
from dativo_ingest.storage.stores import ObjectStore

MANIFEST_DIR = "_manifests"
MANIFEST_VERSION = 1
KEEP_MANIFESTS = 20
_NAME = re.compile(r"^(\d{12})-([A-Za-z0-9_.-]+)\.json$")


@dataclass
class Manifest:
    sequence: int
    run_id: str
    file_format: str
    files: list[dict[str, Any]] = field(default_factory=list)
    #: the state envelope (JSON text) committed with these files
    state: str | None = None
    write_mode: str = "append"
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    committed_at: str = ""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.sequence:012d}-{self.run_id}.json"

    @property
    def rows(self) -> int:
        return sum(int(f.get("rows") or 0) for f in self.files)

    def to_bytes(self) -> bytes:
        return orjson.dumps({
            "version": MANIFEST_VERSION, "sequence": self.sequence, "run_id": self.run_id,
            "committed_at": self.committed_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "file_format": self.file_format, "write_mode": self.write_mode, "rows": self.rows,
            "files": self.files, "added": self.added, "removed": self.removed,
            "state": orjson.loads(self.state) if self.state else None, "properties": self.properties,
        }, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        doc = orjson.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported manifest version {doc.get('version') if isinstance(doc, dict) else None!r}")
        state = doc.get("state")
        return cls(sequence=int(doc["sequence"]), run_id=str(doc["run_id"]), file_format=str(doc["file_format"]),
                   files=list(doc.get("files") or []), state=orjson.dumps(state).decode() if state else None,
                   write_mode=str(doc.get("write_mode") or "append"), added=list(doc.get("added") or []),
                   removed=list(doc.get("removed") or []), committed_at=str(doc.get("committed_at") or ""),
                   properties=dict(doc.get("properties") or {}))


def manifest_names(dataset: ObjectStore) -> list[str]:
    """The manifest file names of a dataset, oldest first."""
    selector = pafs.FileSelector(dataset.fs_path(MANIFEST_DIR), allow_not_found=True, recursive=False)
    names = [info.base_name for info in dataset.filesystem.get_file_info(selector)
             if info.type == pafs.FileType.File and _NAME.match(info.base_name)]
    return sorted(names)


def latest_manifest(dataset: ObjectStore) -> Manifest | None:
    """The newest manifest of a dataset, or None when nothing was ever committed there."""
    names = manifest_names(dataset)
    return read_manifest(dataset, names[-1]) if names else None


def read_manifest(dataset: ObjectStore, name: str) -> Manifest:
    """The manifest ``_manifests/<name>`` of a dataset; one line naming it when it is not ours."""
    path = dataset.fs_path(MANIFEST_DIR, name)
    with dataset.filesystem.open_input_stream(path) as stream:
        data = stream.read()
    try:
        return Manifest.from_bytes(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise InfrastructureError(f"{dataset.url(MANIFEST_DIR, name)}: unreadable run manifest ({exc}); "
                                  "it was not written by dativo-ingest: move it away") from None


def write_manifest(dataset: ObjectStore, manifest: Manifest) -> str:
    """Publish a manifest in one step (an object PUT; write-then-rename on a local disk). Returns its URL."""
    fs = dataset.filesystem
    final = dataset.fs_path(MANIFEST_DIR, manifest.name)
    data = manifest.to_bytes()
    if dataset.kind == "local":
        fs.create_dir(dataset.fs_path(MANIFEST_DIR), recursive=True)
        tmp = dataset.fs_path(MANIFEST_DIR, f".tmp-{uuid.uuid4().hex}")
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, final)
    else:
        with fs.open_output_stream(final) as out:
            out.write(data)
    return dataset.url(MANIFEST_DIR, manifest.name)


def rival_manifests(dataset: ObjectStore, manifest: Manifest) -> list[str]:
    """Other manifests of the same sequence: runs that published on the same head at the same moment."""
    prefix = f"{manifest.sequence:012d}-"
    return [n for n in manifest_names(dataset) if n.startswith(prefix) and n != manifest.name]


def withdraw_manifest(dataset: ObjectStore, manifest: Manifest) -> None:
    """Delete a manifest this run published (it lost a race for its sequence)."""
    dataset.filesystem.delete_file(dataset.fs_path(MANIFEST_DIR, manifest.name))


def prune_manifests(dataset: ObjectStore, keep: int = KEEP_MANIFESTS) -> None:
    """Delete all but the newest ``keep`` manifests (best effort: old manifests are history, not state)."""
    names = manifest_names(dataset)
    for name in names[:-keep] if keep else []:
        try:
            dataset.filesystem.delete_file(dataset.fs_path(MANIFEST_DIR, name))
        except OSError:
            pass
