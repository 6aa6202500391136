"""Download tickets: a pre-signed S3 GET for one file of a project, so that no file goes through Lambda.

What is downloaded is the S3 object under ``projects/<projectId>/``: what the last upload or
``efs-to-s3`` sync wrote there, not the live EFS workspace (a build's output or a git job's
changes reach S3 only through an ``efs-to-s3`` sync). The ticket says which version it found
(``size``, ``lastModified``, ``etag``), so a client can tell whether it is recent enough and compare
with the ``ETag`` of what it then GETs (the URL names the key, not a version: an upload in between
is what the GET returns).

The object is looked up with ``ListObjectsV2`` (prefix = the key, one key), not ``HeadObject``:
a HEAD of a missing key answers ``403``, not ``404``, to a caller without ``s3:ListBucket``
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html, "Permissions"), and the
signing session may list only with an ``s3:prefix`` inside its project (core.scoped), which a
HEAD's implicit list check does not carry. A listing with that prefix is allowed, and the key
itself, if it exists, is the first key listed (every other key with that prefix is longer).

The URL is signed as the project (core.presign): it reaches that project's objects only, and
``expiresAt`` is never later than the signing session's end. It carries
``response-content-disposition`` (signed in, as S3 requires for response overrides:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html) so that a browser that opens
it saves the file under its own name instead of rendering it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from core import aws, config, paths, presign, schemas

# RFC 8187 attr-char besides ALPHA / DIGIT: what ``filename*`` may carry unescaped.
_ATTR_CHARS = "!#$&+-.^_`|~"


@dataclass(frozen=True)
class StoredFile:
    """The S3 object a download would read, as listed."""

    key: str
    size: int
    last_modified: datetime
    etag: str


def checked_request(body: dict[str, Any]) -> tuple[str | None, list[dict[str, str]]]:
    """The request's checked path (NFC), and every problem with the body (schema, then path rules)."""
    problems = schemas.violations("download-request.json", body)
    return paths.checked_path(body, problems), problems


def stored_file(project_id: str, key: str) -> StoredFile | None:
    """The object at exactly ``key``, or None (no such key, or only a folder of that name)."""
    listed = aws.project_client(project_id, "s3").list_objects_v2(
        Bucket=config.settings().projects_bucket, Prefix=key, MaxKeys=1
    )
    for item in listed.get("Contents", []):
        if item["Key"] == key:
            modified = item["LastModified"]
            return StoredFile(
                key=key,
                size=int(item["Size"]),
                last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
                etag=item.get("ETag", ""),
            )
    return None


def content_disposition(path: str) -> str:
    """``attachment`` with the file's own name: RFC 6266's ``filename`` (ASCII) and ``filename*`` (UTF-8).

    The name has passed core.paths (no control characters, no ``/`` or ``\\``). ``filename`` is the
    fallback for clients without RFC 8187: non-ASCII and the characters that would end or escape
    the quoted string become ``_``. The whole value is ASCII, as an HTTP header must be.
    """
    name = path.rsplit("/", 1)[-1]
    fallback = "".join(_ascii(c) for c in name).strip() or "download"
    encoded = quote(name, safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _ascii(character: str) -> str:
    """One character of the fallback name: its ASCII letters ("é" is "e", "ﬁ" is "fi"), else ``_``."""
    base = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
    if base and all(" " <= c <= "~" and c not in '"\\%' for c in base):
        return base
    return "_"


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC to the second, as the API writes every time."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ticket(project_id: str, path: str) -> dict[str, Any] | None:
    """The download ticket for the project's file at ``path`` (checked), or None if S3 holds no such file."""
    key = f"projects/{project_id}/{path}"
    found = stored_file(project_id, key)
    if found is None:
        return None
    params = {
        "Bucket": config.settings().projects_bucket,
        "Key": key,
        "ResponseContentDisposition": content_disposition(path),
    }
    signed = presign.project_url(project_id, "get_object", params, config.download_url_seconds())
    return {
        "url": signed.url,
        "method": "GET",
        "key": key,
        "path": path,
        "size": found.size,
        "lastModified": timestamp(found.last_modified),
        "etag": found.etag,
        "expiresAt": signed.expires_at_text,
    }
