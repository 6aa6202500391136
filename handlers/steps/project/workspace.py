"""Where a project lives: its S3 prefix and its directory on the EFS workspace."""

from __future__ import annotations

from pathlib import Path

from core.config import settings


def s3_prefix(project_id: str) -> str:
    return f"projects/{project_id}/"


def workspace_name(project_id: str) -> str:
    """The workspace as users see it: a path inside the file system's access point."""
    return f"/projects/{project_id}"


def workspace_dir(project_id: str) -> Path:
    return Path(settings().efs_mount_path) / "projects" / project_id


def staging_dir(project_id: str, job_id: str) -> Path:
    """Built here, then renamed into place: a workspace appears whole or not at all."""
    return Path(settings().efs_mount_path) / "projects" / f".staging-{project_id}-{job_id[:12]}"
