"""Uploads waiting for a sync: a burst of uploads to one project makes one job.

``syncreq#<projectId>`` in the projects table names the sync job that will copy the uploaded
keys and the keys so far. The upload trigger adds each key to it; the first upload of a burst
finds none and starts the job, whose workflow first waits a short window and then its turn on the
project. Until the job takes the request (when it holds the project and starts listing) every
new upload joins it: a sync that has not started yet is joined, one that runs is never changed
under it, and uploads after that start the next job, queued behind it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core import aws, jobs
from core.clock import epoch_seconds
from core.config import settings

# Objects longrun writes itself (a scaffold, an efs-to-s3 sync) carry this metadata, the writing
# job's id: the workspace has them already, so their upload events start nothing.
WRITER_METADATA = "longrun-writer"

# More keys than this in one request: the job lists the project instead of looking each one up.
MAX_KEYS = 1000
# A burst ends when no upload has joined for this long (a debounce: the window restarts with each
# upload), or after MAX_GATHER_MS in all, so a steady stream of uploads still gets synced.
QUIET_MS = 1500
MAX_GATHER_MS = 30_000
# A request older than this whose job is gone (a trigger that died between writing the request
# and starting the job) is taken over by the next upload.
STALE_SECONDS = 300


@dataclass(frozen=True)
class Joined:
    job_id: str
    started_here: bool


def _key(project_id: str) -> dict[str, str]:
    return {"pk": f"syncreq#{project_id}"}


def _table(project_id: str | None = None) -> Any:
    """With ``project_id``: as that project (core.scoped), for the sync's own steps; else the function's role."""
    if project_id is not None:
        return aws.project_table(project_id, settings().projects_table)
    return aws.table(settings().projects_table)


def join(project_id: str, user_id: str, path: str, new_job_id: str) -> Joined:
    """Add ``path`` to the project's waiting request, or open one for ``new_job_id``."""
    now = epoch_seconds()
    item = _table().update_item(
        Key=_key(project_id),
        UpdateExpression="SET jobId = if_not_exists(jobId, :job), userId = :user, "
        "createdAt = if_not_exists(createdAt, :now), lastAt = :ms ADD #keys :path",
        ExpressionAttributeNames={"#keys": "keys"},
        ExpressionAttributeValues={":job": new_job_id, ":user": user_id, ":now": now, ":path": {path}, ":ms": _ms()},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    if len(item.get("keys", ())) > MAX_KEYS:
        _table().update_item(
            Key=_key(project_id),
            UpdateExpression="SET #full = :true REMOVE #keys",
            ConditionExpression="jobId = :job",
            ExpressionAttributeNames={"#full": "full", "#keys": "keys"},
            ExpressionAttributeValues={":true": True, ":job": item["jobId"]},
        )
    if item["jobId"] == new_job_id:
        return Joined(new_job_id, True)
    if now - int(item["createdAt"]) > STALE_SECONDS:
        job = jobs.get(item["jobId"], consistent=True)
        if job is None or job["status"] in jobs.FINAL_STATUSES:
            return _take_over(project_id, user_id, path, item["jobId"], new_job_id)
    return Joined(str(item["jobId"]), False)


def _take_over(project_id: str, user_id: str, path: str, dead_job_id: str, new_job_id: str) -> Joined:
    try:
        _table().put_item(
            Item={**_key(project_id), "jobId": new_job_id, "userId": user_id, "createdAt": epoch_seconds(),
                  "keys": {path}},
            ConditionExpression="jobId = :dead",
            ExpressionAttributeValues={":dead": dead_job_id},
        )  # fmt: skip
        return Joined(new_job_id, True)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return join(project_id, user_id, path, new_job_id)


def _ms() -> int:
    return int(time.time() * 1000)


def quiet_in(project_id: str, job_id: str) -> float:
    """Seconds until ``job_id``'s burst of uploads is over (none joined for QUIET_MS); 0 once it is."""
    item = _table(project_id).get_item(Key=_key(project_id), ConsistentRead=True).get("Item")
    if not item or item.get("jobId") != job_id or "lastAt" not in item:
        return 0.0
    now = _ms()
    if now - int(item["createdAt"]) * 1000 >= MAX_GATHER_MS:
        return 0.0
    return max(0.0, (QUIET_MS - (now - int(item["lastAt"]))) / 1000)


def take(project_id: str, job_id: str, *, scoped: bool = True) -> tuple[list[str], bool] | None:
    """The request ``job_id`` was started for, removed: (keys, full). None if it has none."""
    try:
        old = (
            _table(project_id if scoped else None)
            .delete_item(
                Key=_key(project_id),
                ConditionExpression="jobId = :job",
                ExpressionAttributeValues={":job": job_id},
                ReturnValues="ALL_OLD",
            )
            .get("Attributes", {})
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    full = bool(old.get("full"))
    return ([] if full else sorted(old.get("keys", ()))), full


def forget(project_id: str, job_id: str) -> None:
    """Drop the request of a job that ended before taking it (cancelled while queued): the next upload opens one."""
    take(project_id, job_id, scoped=False)
