"""What a running job holds besides its record, given back however the job ends.

A git or sync job holds its project's lock; a sync holds the project's upload request (later
uploads join it). The notify step, a cancel and the execution-status trigger each close jobs, and
each gives these back through here, so none of the three can forget one.
"""

from __future__ import annotations

from typing import Any

from core import locks, sync_requests


def give_back(job: dict[str, Any]) -> None:
    """Release the project's lock and forget the upload request, if this job holds them (no-ops otherwise)."""
    project_id = job.get("projectId")
    if not project_id:
        return
    if job["type"] in locks.LOCKING_JOB_TYPES:
        locks.release(project_id, job["jobId"])
    if job["type"] == "sync":
        sync_requests.forget(project_id, job["jobId"])  # later uploads start a new job
