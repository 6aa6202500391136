"""Where a build's pieces live, shared by the build workflow's steps, the build worker and the tools.

* log group: one per project, ``{BUILD_LOG_GROUP_PREFIX}{projectId}``, with the stack's retention;
* log stream: one per build, named by its job id (a retried attempt writes on in the same stream);
* artifacts: ``artifacts/{projectId}/{jobId}/{path}`` in the projects bucket, beside and not under
  ``projects/{projectId}/`` (that prefix is the project's files: a build's output there would be
  synced back into the workspace);
* cache: ``{EFS}/cache/{projectId}`` on the file system, kept between builds of the project; or,
  when ``BUILD_CACHE_DIR`` is set (BuildCapacity EC2: the instance's disk, a host volume),
  ``{BUILD_CACHE_DIR}/{projectId}``, kept while that instance lives. Local disk serves a package
  manager's thousands of small files faster than NFS, and no other instance sees it.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config import settings

# The project's own build settings, in its workspace.
PROJECT_FILE = "longrun.json"


def log_group(project_id: str) -> str:
    prefix = os.environ.get("BUILD_LOG_GROUP_PREFIX", "/longrun/builds/")
    return f"{prefix}{project_id}"


def log_stream(job_id: str) -> str:
    return job_id


def artifacts_prefix(project_id: str, job_id: str) -> str:
    return f"artifacts/{project_id}/{job_id}/"


def cache_dir(project_id: str) -> Path:
    """The project's build cache: on the instance's disk when the worker has one (``BUILD_CACHE_DIR``), else on EFS."""
    if "/" in project_id or project_id in ("", ".", ".."):
        raise ValueError(f"not a project id: {project_id!r}")
    local = os.environ.get("BUILD_CACHE_DIR")
    return (Path(local) if local else Path(settings().efs_mount_path) / "cache") / project_id


def log_retention_days() -> int:
    return int(os.environ.get("BUILD_LOG_RETENTION_DAYS", "30"))
