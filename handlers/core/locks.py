"""One git job per project at a time: a lock item in the projects table, taken with a conditional write.

``lock#<projectId>`` names the job that holds it and when it lapses. Taking it succeeds if there
is none, if it has lapsed (a job killed so hard that nothing released it), or if this job holds it
already (a retried step). Only the holder releases it: the notify step on every exit of a git
workflow, or the API when the user cancels the job.

The API takes the lock before it starts an execution; the git steps take it again (a no-op for
the holder) so that an execution started some other way is held to the same rule, and check that
they still hold it before they change the workspace for good, so that a cancelled job whose
Lambda is still running cannot overwrite the work of the job that came after it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from core import aws
from core.clock import epoch_seconds, now_iso
from core.config import settings
from core.errors import ProjectBusy
from core.workflow_errors import LockLost

# Job kinds that run git on a project's workspace: the API takes the lock (or answers 409).
GIT_JOB_TYPES = frozenset({"git-clone", "git-merge", "git-pull", "git-branch", "git-push"})
# Job kinds the API starts only while no other job holds the project: it takes the lock for them
# before their execution starts (or answers 409 ProjectBusy). The git kinds, and delete-project,
# which must not remove a workspace under a running job.
API_LOCKED_JOB_TYPES = GIT_JOB_TYPES | {"delete-project"}
# Every kind that changes a workspace holds the lock while it runs; a sync takes it in its
# workflow and waits its turn instead of being refused.
LOCKING_JOB_TYPES = API_LOCKED_JOB_TYPES | {"sync"}

# Longer than any git workflow may run (its state machine's own timeout), so a live job keeps it.
LOCK_SECONDS = 30 * 60


def _key(project_id: str) -> dict[str, str]:
    return {"pk": f"lock#{project_id}"}


def _table(project_id: str, scoped: bool) -> Any:
    """``scoped``: a step acting for the project (core.scoped); the API and notify use their own role."""
    if scoped:
        return aws.project_table(project_id, settings().projects_table)
    return aws.table(settings().projects_table)


def acquire(project_id: str, job_id: str, job_type: str, *, scoped: bool = False) -> str | None:
    """Take the project's lock for ``job_id``; ``None`` on success, else the id of the job that holds it."""
    now = epoch_seconds()
    try:
        _table(project_id, scoped).put_item(
            Item={
                **_key(project_id),
                "jobId": job_id,
                "type": job_type,
                "takenAt": now_iso(),
                "expiresAt": now + LOCK_SECONDS,
            },
            ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR jobId = :job",
            ExpressionAttributeValues={":now": now, ":job": job_id},
        )
        return None
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    holder = _table(project_id, scoped).get_item(Key=_key(project_id), ConsistentRead=True).get("Item")
    return str(holder["jobId"]) if holder else acquire(project_id, job_id, job_type, scoped=scoped)


def hold(project_id: str, job_id: str, job_type: str) -> None:
    """Take (or keep) the lock in a git step, as the project; ``ProjectBusy`` if another job holds it."""
    holder = acquire(project_id, job_id, job_type, scoped=True)
    if holder is not None:
        raise ProjectBusy(f"project {project_id} is busy with job {holder}")


def refresh(project_id: str, job_id: str) -> None:
    """Extend the lock ``job_id`` holds (long syncs call this as they go, as the project); ``LockLost`` if none."""
    now = epoch_seconds()
    try:
        _table(project_id, scoped=True).update_item(
            Key=_key(project_id),
            UpdateExpression="SET expiresAt = :later",
            ConditionExpression="jobId = :job AND expiresAt >= :now",
            ExpressionAttributeValues={":later": now + LOCK_SECONDS, ":job": job_id, ":now": now},
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise LockLost(f"job {job_id} no longer holds project {project_id} (cancelled?)") from None
        raise


def check_held(project_id: str, job_id: str) -> None:
    """``LockLost`` unless ``job_id`` still holds a live lock on the project (a git step's check, as the project)."""
    item = _table(project_id, scoped=True).get_item(Key=_key(project_id), ConsistentRead=True).get("Item")
    if not item or item["jobId"] != job_id or int(item["expiresAt"]) < epoch_seconds():
        raise LockLost(f"job {job_id} no longer holds project {project_id} (cancelled?); the workspace is unchanged")


def release(project_id: str, job_id: str) -> bool:
    """Give the lock back if ``job_id`` holds it; False if it did not (released already, or lapsed and retaken)."""
    try:
        _table(project_id, scoped=False).delete_item(
            Key=_key(project_id), ConditionExpression="jobId = :job", ExpressionAttributeValues={":job": job_id}
        )
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
