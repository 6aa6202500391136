"""Retrying a failed job: its execution is redriven from the state that failed (``POST /jobs/{jobId}/retry``).

Step Functions' ``RedriveExecution`` continues an execution that ended ``FAILED``, ``TIMED_OUT``
or ``ABORTED`` from its unsuccessful state, with the input that state had, under the same ARN.
So a job is retryable when its execution ended *at a work state*: an error no ``Catch`` of the
workflow took (a git server that failed, a build worker that could not finish, a Lambda fault),
closed by the execution-status trigger. A failure the workflow caught and told (a merge conflict,
a build command that exited non-zero) ended at the workflow's ``Fail`` state; redriving would only
run that ``Fail`` state again, so it is refused with the reason.

The job keeps its id and its ``seq``: it goes back to ``RUNNING`` with ``attempt`` one higher (the
execution's ``redriveCount``; the execution-status trigger ignores the end of an earlier
attempt), takes its project's lock and its place among its user's running jobs (:mod:`core.quota`)
again, and tells its subscribers with a ``job.progress`` event
of the step ``retry``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from botocore.exceptions import ClientError

from core import aws, jobs, locks, publisher, quota, status_events
from core.clock import now_iso
from core.config import settings
from core.errors import Conflict, ProjectBusy
from core.records import to_dynamo
from core.workflow_errors import FAIL_STATE_ERRORS

RETRYABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT"})
# The Error of each workflow's Fail states: the workflow caught the failure and told the user.
HANDLED_ERRORS = FAIL_STATE_ERRORS


def _refuse(job: dict[str, Any], why: str) -> Conflict:
    return Conflict(
        f"job {job['jobId']} cannot be retried: {why}",
        [{"path": "jobId", "message": why, "status": job["status"], "error": (job.get("error") or {}).get("code")}],
    )


def _execution(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return aws.client("stepfunctions").describe_execution(executionArn=job["executionArn"])
    except ClientError as e:
        if e.response["Error"]["Code"] == "ExecutionDoesNotExist":
            raise _refuse(job, "its execution never started; start the job again") from None
        raise


def check(job: dict[str, Any]) -> dict[str, Any]:
    """The job's execution, if the job may be retried; else :class:`Conflict` saying why."""
    if job["status"] not in RETRYABLE_STATUSES:
        raise _refuse(job, f"only a FAILED or TIMED_OUT job can be retried, and it is {job['status']}")
    execution = _execution(job)
    if execution["status"] == "RUNNING":
        raise _refuse(job, "its execution is still running")
    if execution.get("error") in HANDLED_ERRORS:
        code = (job.get("error") or {}).get("code", "its error")
        raise _refuse(
            job,
            f"the workflow handled its failure ({code}), which a retry would meet again; "
            "change what caused it and start a new job",
        )
    return execution


def _reopen(job: dict[str, Any], attempt: int) -> bool:
    """Back to ``RUNNING`` with ``attempt``, only from the final status read (a concurrent retry loses)."""
    try:
        aws.client("dynamodb").update_item(
            TableName=settings().jobs_table,
            Key={"jobId": to_dynamo(job["jobId"])},
            UpdateExpression="SET #status = :running, #attempt = :attempt, #updatedAt = :at REMOVE #error, #endedAt",
            ConditionExpression="#status = :was AND (attribute_not_exists(#attempt) OR #attempt = :previous)",
            ExpressionAttributeNames={
                "#status": "status",
                "#attempt": "attempt",
                "#updatedAt": "updatedAt",
                "#error": "error",
                "#endedAt": "endedAt",
            },
            ExpressionAttributeValues={
                ":running": to_dynamo("RUNNING"),
                ":was": to_dynamo(job["status"]),
                ":attempt": to_dynamo(attempt),
                ":previous": to_dynamo(attempt - 1),
                ":at": to_dynamo(now_iso()),
            },
        )
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def _put_back(job: dict[str, Any], attempt: int) -> None:
    """Undo :func:`_reopen` when the redrive itself was refused: the job is as it was."""
    aws.client("dynamodb").update_item(
        TableName=settings().jobs_table,
        Key={"jobId": to_dynamo(job["jobId"])},
        UpdateExpression="SET #status = :was, #attempt = :previous, #error = :error",
        ConditionExpression="#status = :running AND #attempt = :attempt",
        ExpressionAttributeNames={"#status": "status", "#attempt": "attempt", "#error": "error"},
        ExpressionAttributeValues={
            ":was": to_dynamo(job["status"]),
            ":previous": to_dynamo(attempt - 1),
            ":running": to_dynamo("RUNNING"),
            ":attempt": to_dynamo(attempt),
            ":error": to_dynamo(job.get("error") or {}),
        },
    )


def retry(job: dict[str, Any]) -> dict[str, Any]:
    """Redrive the job's execution from the state that failed; the job as it is now (``RUNNING``)."""
    check(job)
    attempt = int(job.get("attempt", 0)) + 1
    project_id = job.get("projectId")
    locking = bool(project_id) and job["type"] in locks.LOCKING_JOB_TYPES
    if locking:
        holder = locks.acquire(project_id, job["jobId"], job["type"])
        if holder is not None:
            raise ProjectBusy(
                f"project {project_id} is busy with job {holder}",
                [{"path": "projectId", "message": "another job holds the project", "jobId": holder}],
            )
    lost_race = False  # another retry reopened the job: the place is that retry's now
    try:
        quota.take(job["userId"], job["jobId"])  # RUNNING again: it counts again (429 at the limit)
        if not _reopen(job, attempt):
            lost_race = True
            raise Conflict(f"job {job['jobId']} changed meanwhile (another retry?); read it again")
        # The retry is an event of the job like any other (seq goes on), not a step of its workflow;
        # it comes before the redrive, so it precedes every event of the redriven steps.
        _retry_event(job, "STARTED", {"attempt": attempt})
        try:
            aws.client("stepfunctions").redrive_execution(executionArn=job["executionArn"])
        except ClientError as e:
            _put_back(job, attempt)
            reason = e.response["Error"].get("Message") or e.response["Error"]["Code"]
            _retry_event(job, "FAILED", {"attempt": attempt, "message": reason})
            if e.response["Error"]["Code"] == "ExecutionNotRedrivable":
                raise _refuse(job, reason) from None
            raise
    except Exception:
        if locking:
            locks.release(project_id, job["jobId"])
        if not lost_race:
            with contextlib.suppress(Exception):  # the job stays closed: no place (the quota heals a miss)
                quota.give_back(job["userId"], job["jobId"])
        raise
    status_events.announce(job, "RUNNING")
    return jobs.get(job["jobId"], consistent=True)


def _retry_event(job: dict[str, Any], status: str, detail: dict[str, Any]) -> None:
    publisher.publish(job, {"type": "job.progress", "step": "retry", "status": status, "detail": detail})
