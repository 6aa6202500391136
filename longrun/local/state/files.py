"""Atomic writes (temp file, fsync, rename) and the content-addressed blob store.

A snapshot that a crash interrupts must leave the previous one whole: every file is written beside
its final name, fsynced, renamed over it, and the directory fsynced, so a reader sees the old file
or the new one, never half of either (rename(2) is atomic within a file system).

S3 object bodies are kept apart from the pickles, one file per distinct body, named by its SHA-256:
a body is written once, when first seen, so a save costs what changed, not the bucket's size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

_blob_root: Path | None = None


def write_atomic(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` entirely or keeps what it held: never a partial file, even on a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def configure_blobs(root: Path) -> None:
    """Where this process keeps blobs (``<data-dir>/state/blobs``); set by the keeper, or by a test."""
    global _blob_root
    _blob_root = root


def blob_root() -> Path:
    if _blob_root is None:
        raise RuntimeError("no blob directory configured (longrun.local.state.files.configure_blobs)")
    return _blob_root


def _blob_path(digest: str) -> Path:
    return blob_root() / digest[:2] / digest


def put_blob(data: bytes) -> str:
    """Store ``data`` once under its SHA-256 and return the digest; a body already stored is not rewritten."""
    digest = hashlib.sha256(data).hexdigest()
    path = _blob_path(digest)
    if not path.exists():
        write_atomic(path, data)
    return digest


def get_blob(digest: str) -> bytes:
    return _blob_path(digest).read_bytes()


def collect_blobs(keep: Iterable[str]) -> int:
    """Delete every blob not in ``keep`` (once the pickle naming ``keep`` is renamed); returns the count."""
    wanted = set(keep)
    root = blob_root()
    removed = 0
    if not root.exists():
        return 0
    for shard in root.iterdir():
        for blob in shard.iterdir():
            if blob.name not in wanted and not blob.name.endswith(".tmp"):
                blob.unlink(missing_ok=True)
                removed += 1
    return removed
