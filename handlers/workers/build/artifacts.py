"""A finished build's artifacts: the files that match the project's globs, copied to S3.

Globs and files are user content. A match must be a regular file inside the workspace, reached
without a symlink (``lstat`` of every match; the file is opened with ``O_NOFOLLOW``), never under
``.git``. Each goes to ``artifacts/{projectId}/{jobId}/{path}`` with a pre-signed download URL;
the job's result lists the first ``RESULT_MAX`` of them (Step Functions caps a state at 256 KiB).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core import aws, builds
from core.config import settings
from core.sync_requests import WRITER_METADATA
from steps.build.errors import TooManyArtifacts

MAX_FILES = 1000
MAX_TOTAL_BYTES = 5 * 1024**3
RESULT_MAX = 100
URL_SECONDS = 3600


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int


def _walk(root: Path, start: Path) -> list[Path]:
    if start.is_symlink():
        return []
    if start.is_file():
        return [start]
    found = []
    for directory, subdirs, files in os.walk(start, followlinks=False):
        subdirs[:] = sorted(d for d in subdirs if d != ".git")
        found += [Path(directory) / f for f in sorted(files)]
    return found


def collect(workspace: Path, globs: list[str]) -> list[Artifact]:
    """The workspace's files that match ``globs``, each once, in path order."""
    root = workspace.resolve()
    chosen: dict[str, Artifact] = {}
    total = 0
    for pattern in globs:
        for match in sorted(root.glob(pattern)):
            for candidate in _walk(root, match):
                relative = candidate.relative_to(root)
                if ".git" in relative.parts or relative.as_posix() in chosen:
                    continue
                # No symlink anywhere on the way: every parent, then the file itself.
                if any((root / Path(*relative.parts[:i])).is_symlink() for i in range(1, len(relative.parts) + 1)):
                    continue
                info = os.lstat(candidate)
                if not stat.S_ISREG(info.st_mode):
                    continue
                total += info.st_size
                chosen[relative.as_posix()] = Artifact(relative.as_posix(), info.st_size)
                if len(chosen) > MAX_FILES or total > MAX_TOTAL_BYTES:
                    raise TooManyArtifacts(
                        f"the artifact globs match more than {MAX_FILES} files or {MAX_TOTAL_BYTES} bytes"
                    )
    return [chosen[p] for p in sorted(chosen)]


def upload(workspace: Path, found: list[Artifact], project_id: str, job_id: str) -> list[dict[str, Any]]:
    """Copy ``found`` to S3; the result's entries (with download URLs) for the first ``RESULT_MAX``."""
    # Uploaded as the project (core.scoped: its artifacts/<projectId>/ only); the URLs are signed with
    # the worker's own role, which may read artifacts: a URL outlives the project session's hour.
    s3, signer = aws.project_client(project_id, "s3"), aws.presigning_client("s3")
    bucket, prefix = settings().projects_bucket, builds.artifacts_prefix(project_id, job_id)
    expires = (datetime.now(UTC) + timedelta(seconds=URL_SECONDS)).isoformat(timespec="seconds").replace("+00:00", "Z")
    listed = []
    for index, artifact in enumerate(found):
        key = prefix + artifact.path
        fd = os.open(workspace / artifact.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            s3.upload_fileobj(f, bucket, key, ExtraArgs={"Metadata": {WRITER_METADATA: job_id}})
        if index < RESULT_MAX:
            url = signer.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_SECONDS
            )
            listed.append({"path": artifact.path, "key": key, "size": artifact.size, "url": url, "expiresAt": expires})
    return listed
