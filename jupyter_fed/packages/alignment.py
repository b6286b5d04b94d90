"""The alignment contract: what a record-linkage session leaves at each runner, and its checks.

A ``prl`` session ends with every party holding, for each dataset it linked, the row positions of
the intersection in one agreed order — position ``i`` is the same person at every party. Each
runner keeps its own; the coordinator keeps only an opaque digest and sizes. Later vertical
sessions read the rows through ``DatasetHandle.aligned(prl_session_id)``, which loads what is
written here and refuses it when the dataset is no longer the version that was linked.

Files live under the runner's home (``StepContext.cache_dir``), one folder per principal (a
digest of the name, so one user's linkage is never another's), readable by the runner's user only
(0600): ``alignments/<principal digest>/<prl session id>/<dataset>.safetensors``, holding the
int64 row positions and, as metadata, the dataset's version, the role it was linked as, the
protocol and the alignment's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.base import DataFile, file_version

__all__ = ["Alignment", "DatasetVersion", "alignment_path", "load_alignment", "principal_dir",
           "save_alignment", "write_private_file"]

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What a session id must look like before it names a folder (the coordinator's are hex)."""


def principal_dir(cache_dir: Path, principal: str, kind: str) -> Path:
    """``cache_dir/<kind>/<digest of principal>``: per-user state that never names the user."""
    digest = hashlib.sha256(principal.encode()).hexdigest()[:32]
    return Path(cache_dir) / kind / digest


def _session(prl_session_id: str) -> str:
    if not SESSION_ID.match(prl_session_id or ""):
        raise ConfigError(f"{prl_session_id!r} is not a session id",
                          "pass the id of a completed prl session (prl_session.id)")
    return prl_session_id


def alignment_path(cache_dir: Path, principal: str, prl_session_id: str, dataset: str) -> Path:
    """Where a principal's alignment of ``dataset`` from ``prl_session_id`` is kept."""
    if "/" in dataset or dataset in ("", ".", ".."):
        raise ConfigError(f"{dataset!r} is not a dataset name", "")
    return principal_dir(cache_dir, principal, "alignments") / _session(prl_session_id) / \
        f"{dataset}.safetensors"


def write_private_file(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` atomically, readable and writable by the runner's user only (0600).

    The folder is made 0700. The file is first written beside its target and then renamed, so a
    reader sees the old content or the new, never half of it. ``sync=False`` skips the fsync:
    the file still survives the process (it is in the page cache), not a machine crash — for
    state rewritten every few milliseconds that a machine crash makes useless anyway.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class DatasetVersion:
    """What identifies the rows a dataset had when it was linked.

    Re-registering the dataset (``registered_at``), rewriting its file (modification time or
    size) or changing its row count all make it another version, whose row ``i`` may be another
    person: an alignment of the old version must not be applied to it.
    """

    registered_at: str
    size: int
    mtime_ns: int
    num_rows: int
    etag: str = ""
    """An object's ETag on object storage (``""`` for a local file, and in older alignments)."""

    @classmethod
    def of(cls, registered_at: Any, path: DataFile | None, num_rows: int) -> DatasetVersion:
        stamp = registered_at.isoformat() if isinstance(registered_at, datetime) else \
            str(registered_at)
        if path is None:
            return cls(stamp, -1, -1, int(num_rows))
        size, mtime_ns, etag = file_version(path)
        return cls(stamp, size, mtime_ns, int(num_rows), etag)

    def changes(self, current: DatasetVersion) -> list[str]:
        """What differs from ``current``, in words (never a value from the file)."""
        out = []
        if self.registered_at != current.registered_at:
            out.append("it was registered again")
        if (self.size, self.mtime_ns, self.etag) != (current.size, current.mtime_ns, current.etag):
            out.append("its file was rewritten")
        if self.num_rows != current.num_rows:
            out.append("its number of rows changed")
        return out


@dataclass
class Alignment:
    """One dataset's part of a linkage: its rows of the intersection, in aligned order.

    Attributes
    ----------
    rows
        int64 row positions in the dataset: ``rows[i]`` is the dataset's row for the ``i``-th
        member of the intersection.
    digest
        A hash of the intersection's opaque tokens in aligned order: equal at every party of a
        correct linkage (and what the coordinator keeps), so later sessions can check that
        their parties hold the same alignment.
    """

    prl_session_id: str
    dataset: str
    role: str
    rows: np.ndarray
    version: DatasetVersion
    digest: str
    protocol: str
    created_at: str = ""

    @property
    def size(self) -> int:
        return len(self.rows)


def save_alignment(cache_dir: Path, principal: str, alignment: Alignment) -> Path:
    """Keep ``alignment`` for ``principal`` (0600); returns the file written."""
    from jupyter_fed.wire import encode

    rows = np.ascontiguousarray(alignment.rows, dtype=np.int64)
    meta = {"prl_session_id": alignment.prl_session_id, "dataset": alignment.dataset,
            "role": alignment.role, "version": asdict(alignment.version),
            "digest": alignment.digest, "protocol": alignment.protocol,
            "created_at": alignment.created_at or datetime.now(UTC).isoformat()}
    path = alignment_path(cache_dir, principal, alignment.prl_session_id, alignment.dataset)
    write_private_file(path, encode({"rows": rows}, {"alignment": json.dumps(meta)}))
    return path


def load_alignment(cache_dir: Path, principal: str, prl_session_id: str,
                   dataset: str) -> Alignment | None:
    """The principal's alignment of ``dataset`` from ``prl_session_id``, or ``None``."""
    from jupyter_fed.wire import decode
    from jupyter_fed.wire.tensors import metadata

    path = alignment_path(cache_dir, principal, prl_session_id, dataset)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    meta = json.loads(metadata(data)["alignment"])
    return Alignment(meta["prl_session_id"], meta["dataset"], meta["role"],
                     decode(data)["rows"].astype(np.int64, copy=False),
                     DatasetVersion(**meta["version"]), meta["digest"], meta["protocol"],
                     meta.get("created_at", ""))
