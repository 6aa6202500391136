"""The two sides of a sync, listed in the same order, and what one page of them asks for.

Both sides list relative paths in the byte order of their UTF-8 form (S3's ``ListObjectsV2``
order; the workspace walk sorts the same way), so a page of the source and the destination
entries in the same key range can be compared without holding either side whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from core import aws, paths
from steps.sync import work
from steps.sync.files import Workspace
from steps.sync.manifest import Record


@dataclass(frozen=True)
class Item:
    """A file on one side: its relative path, size, modification time and (S3) ETag and key."""

    path: str
    size: int
    mtime_ns: int
    etag: str = ""
    key: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Problem:
    path: str
    message: str


def _mtime_ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def _etag(raw: str) -> str:
    return raw.strip('"')


def s3_items(project_id: str, prefix: str, start_after: str | None) -> Iterator[Item | Problem]:
    """Objects under the project's prefix (and the sync's ``prefix``), after ``start_after``, in key order."""
    base = work.project_prefix(project_id)
    kwargs: dict[str, Any] = {"Bucket": work.bucket(), "Prefix": base + prefix, "MaxKeys": 1000}
    if start_after:
        kwargs["StartAfter"] = base + start_after
    for page in aws.client("s3").get_paginator("list_objects_v2").paginate(**kwargs):
        for obj in page.get("Contents", []):
            rel = paths.relative_key(obj["Key"], base)
            if rel is None:
                if not obj["Key"].endswith("/"):  # folder markers are not files; anything else is reported
                    yield Problem(obj["Key"][len(base) :], "not a safe path for the workspace; skipped")
                continue
            yield Item(rel, int(obj["Size"]), _mtime_ns(obj["LastModified"]), _etag(obj["ETag"]), obj["Key"])


def efs_items(workspace: Workspace, prefix: str, start_after: str | None) -> Iterator[Item | Problem]:
    """Regular files of the workspace under ``prefix``, after ``start_after``, in the same order."""
    cursor = start_after
    while True:
        entries, cursor, skipped = workspace.walk(prefix, cursor, 1000)
        for path in skipped:
            yield Problem(path, "a symlink or special file; not followed, skipped")
        for entry in entries:
            yield Item(entry.path, entry.size, entry.mtime_ns)
        if cursor is None:
            return


def unchanged(direction: str, source: Item, dest: Item | None, record: Record | None) -> bool:
    """True when the destination already holds the source's content (see :mod:`steps.sync.manifest`).

    With a record from an earlier sync, the ETag (the object's identity) and the workspace file's
    size and mtime must all match it. Without one (files that came some other way), a matching size
    and an mtime no older than the object's, the rule ``aws s3 sync`` uses, counts as the same.
    """
    if dest is None or dest.size != source.size:
        return False
    s3, efs = (source, dest) if direction == "s3-to-efs" else (dest, source)
    if record is not None:
        return record.etag == s3.etag and record.size == efs.size and record.mtime_ns == efs.mtime_ns
    if direction == "s3-to-efs":
        return efs.mtime_ns // 1_000_000_000 == s3.mtime_ns // 1_000_000_000
    return s3.mtime_ns // 1_000_000_000 >= efs.mtime_ns // 1_000_000_000
