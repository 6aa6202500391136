"""What the last syncs of a project wrote: the record that makes a sync incremental.

One JSON object per project at ``manifests/<projectId>.json`` in the projects bucket (outside the
project's prefix), mapping each relative path to the file and the object it was last made equal
to: ``[size, etag, mtime_ns]``, where ``etag`` is the S3 object's and ``mtime_ns`` the workspace
file's. A file whose size and mtime, and an object whose ETag, still match their record are the
same content on both sides: neither read nor written. Both directions share the record, so what
one direction wrote is not copied back by the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from steps.sync import work


@dataclass(frozen=True)
class Record:
    size: int
    etag: str
    mtime_ns: int


def key(project_id: str) -> str:
    return f"manifests/{project_id}.json"


def load(project_id: str) -> dict[str, Record]:
    try:
        body = work.project_s3(project_id).get_object(Bucket=work.bucket(), Key=key(project_id))["Body"].read()
    except ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return {}
        raise
    entries: dict[str, Any] = json.loads(body).get("entries", {})
    return {path: Record(int(v[0]), str(v[1]), int(v[2])) for path, v in entries.items()}


def save(project_id: str, records: dict[str, Record]) -> None:
    entries = {path: [r.size, r.etag, r.mtime_ns] for path, r in sorted(records.items())}
    work.put_json(key(project_id), {"version": 1, "entries": entries}, work.project_s3(project_id))
