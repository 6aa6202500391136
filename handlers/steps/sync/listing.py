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

from botocore.exceptions import ClientError

from core import paths
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


def object_mtime_ns(when: datetime) -> int:
    """An object's LastModified as a file mtime, in whole seconds: what a copy sets and a listing compares."""
    return int(when.timestamp()) * 1_000_000_000


def object_etag(raw: str) -> str:
    return raw.strip('"')


def s3_item(project_id: str, path: str) -> Item | None:
    """One object of the project, looked up by its path (an uploaded key); None if it is gone."""
    key = work.project_prefix(project_id) + path
    try:
        head = work.project_s3(project_id).head_object(Bucket=work.bucket(), Key=key)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return Item(path, int(head["ContentLength"]), object_mtime_ns(head["LastModified"]), object_etag(head["ETag"]), key)


def s3_items(project_id: str, prefix: str, start_after: str | None) -> Iterator[Item | Problem]:
    """Objects under the project's prefix (and the sync's ``prefix``), after ``start_after``, in key order."""
    base = work.project_prefix(project_id)
    kwargs: dict[str, Any] = {"Bucket": work.bucket(), "Prefix": base + prefix, "MaxKeys": 1000}
    if start_after:
        kwargs["StartAfter"] = base + start_after
    for page in work.project_s3(project_id).get_paginator("list_objects_v2").paginate(**kwargs):
        for obj in page.get("Contents", []):
            rel = paths.relative_key(obj["Key"], base)
            if rel is None:
                if not obj["Key"].endswith("/"):  # folder markers are not files; anything else is reported
                    yield Problem(obj["Key"][len(base) :], "not a safe path for the workspace; skipped")
                continue
            yield Item(
                rel, int(obj["Size"]), object_mtime_ns(obj["LastModified"]), object_etag(obj["ETag"]), obj["Key"]
            )


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
