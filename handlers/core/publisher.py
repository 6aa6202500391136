"""Publishing job events: number them, store them, then push them to the job's subscribers.

``seq`` starts at 1 for each job and rises by one per event with no gaps: the event row and the
job's counter are written in one DynamoDB transaction, conditioned on the counter not having moved.
A job's final status is written in that same transaction as its ``job.finished`` event, and only
while the job is still ``RUNNING``: whoever closes a job first (the notify step, a cancel) wins,
and the user is told exactly once.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from core import aws, connections, jobs, observability, quota, status_events
from core.clock import now_iso
from core.config import settings
from core.records import to_dynamo
from core.workflow_errors import TransientError

logger = Logger(child=True)

MAX_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 0.005
BACKOFF_CAP_SECONDS = 0.5


def publish(
    job: dict[str, Any],
    message: dict[str, Any],
    *,
    set_fields: dict[str, Any] | None = None,
    close_as: str | None = None,
    after_seq: int | None = None,
    while_running: bool = False,
) -> dict[str, Any] | None:
    """Store and push one event of ``job`` (which needs ``jobId``, ``userId``, ``projectId``).

    ``set_fields`` are written on the job item in the same transaction (a step's state, a result).
    ``close_as`` makes this the job's final event: the status is set only if the job is still
    ``RUNNING``; if it is not, nothing is written and ``None`` comes back.
    ``while_running`` publishes only while the job is ``RUNNING`` (a build's log lines): nothing
    follows a job's ``job.finished``, and ``None`` comes back once it is closed.
    ``after_seq`` is the caller's guess of the job's current ``seq`` (the event it published
    last): the first attempt then needs no read, and a wrong guess only costs a retry.
    Returns the event as pushed.
    """
    job_id = job["jobId"]
    for attempt in range(MAX_ATTEMPTS):
        if attempt > 1 or (attempt and after_seq is None):
            # someone published between our read and our write: back off, with jitter
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
        if attempt == 0 and after_seq is not None:
            seq = after_seq + 1
        else:
            current = jobs.get(job_id, consistent=True)
            if current is None:
                raise LookupError(f"job {job_id} does not exist")
            if (close_as or while_running) and current["status"] != "RUNNING":
                return None
            seq = int(current.get("seq", 0)) + 1
        at = now_iso()
        event = {"type": message["type"], "jobId": job_id, "projectId": job.get("projectId"), "seq": seq, "at": at}
        event.update({k: v for k, v in message.items() if k != "type"})
        if _write(job_id, seq, at, event, set_fields or {}, close_as, while_running):
            if close_as:  # before the push: a client told job.finished may start its next job at once
                _give_back_place(job)
            _push(job, event)
            if seq == 1:  # the job's first event: its RUNNING is announced once, by the writer that won
                status_events.announce(job, "RUNNING")
            return event
    # The state machine's Retry takes it from here.
    raise TransientError(f"could not publish to job {job_id}: too much contention")


def _write(
    job_id: str,
    seq: int,
    at: str,
    event: dict[str, Any],
    set_fields: dict[str, Any],
    close_as: str | None,
    while_running: bool = False,
) -> bool:
    names = {"#seq": "seq", "#updatedAt": "updatedAt"}
    values: dict[str, Any] = {":seq": to_dynamo(seq), ":prev": to_dynamo(seq - 1), ":at": to_dynamo(at)}
    sets = ["#seq = :seq", "#updatedAt = :at"]
    for i, (path, value) in enumerate(set_fields.items()):
        parts = path.split(".")
        placeholders = []
        for j, part in enumerate(parts):
            names[f"#f{i}_{j}"] = part
            placeholders.append(f"#f{i}_{j}")
        values[f":f{i}"] = to_dynamo(value)
        sets.append(f"{'.'.join(placeholders)} = :f{i}")
    condition = "#seq = :prev"
    if close_as or while_running:
        names["#status"] = "status"
        values[":running"] = to_dynamo("RUNNING")
        condition += " AND #status = :running"
    if close_as:
        values[":final"] = to_dynamo(close_as)
        sets.append("#status = :final")
    try:
        aws.client("dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": settings().jobs_table,
                        "Key": {"jobId": to_dynamo(job_id)},
                        "UpdateExpression": "SET " + ", ".join(sets),
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Put": {
                        "TableName": settings().job_events_table,
                        "Item": {
                            "jobId": to_dynamo(job_id),
                            "seq": to_dynamo(seq),
                            "body": to_dynamo(json.dumps(event, separators=(",", ":"))),
                        },
                        "ConditionExpression": "attribute_not_exists(jobId)",
                    }
                },
            ]
        )
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            return False  # someone else published first, or the job was closed: look again
        raise


def _push(job: dict[str, Any], event: dict[str, Any]) -> None:
    targets = [("job", job["jobId"])]
    if job.get("projectId"):
        targets.append(("project", job["projectId"]))
    for connection_id in connections.subscribers(job["userId"], targets):
        connections.send(connection_id, event)


def events_after(job_id: str, after: int) -> list[dict[str, Any]]:
    """The job's stored events with ``seq > after``, in order."""
    table = aws.table(settings().job_events_table)
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "jobId = :j AND seq > :s",
        "ExpressionAttributeValues": {":j": job_id, ":s": after},
        "ConsistentRead": True,
    }
    out: list[dict[str, Any]] = []
    while True:
        page = table.query(**kwargs)
        out.extend(json.loads(item["body"]) for item in page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def finished_event(job_id: str) -> dict[str, Any] | None:
    """The job's latest ``job.finished``, searched from its newest event back; None if it has none.

    Not always the job's last event: a retry that Step Functions refused tells its ``retry``
    ``FAILED`` after the job is closed again, and an older ``job.finished`` is kept by a job that a
    retry reopened (callers check the job's status first).
    """
    query: dict[str, Any] = {
        "KeyConditionExpression": "jobId = :j",
        "ExpressionAttributeValues": {":j": job_id},
        "ScanIndexForward": False,
        "Limit": 25,
        "ConsistentRead": True,
    }
    table = aws.table(settings().job_events_table)
    while True:
        page = table.query(**query)
        for item in page.get("Items", []):
            event = json.loads(item["body"])
            if event.get("type") == "job.finished":
                return event
        if "LastEvaluatedKey" not in page:
            return None
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def progress(
    job: dict[str, Any],
    step: str,
    status: str,
    detail: dict[str, Any] | None = None,
    after_seq: int | None = None,
    *,
    while_running: bool = True,
) -> dict[str, Any] | None:
    """Publish ``job.progress`` for ``step`` and record the step's state on the job, atomically.

    ``STARTED`` writes the step's whole entry; later statuses update it in place, so the step keeps
    its ``startedAt`` without a read. ``QUEUED`` (a build waiting for a worker) writes a whole entry
    that has not started yet. Only while the job is ``RUNNING``: a step still running when
    the user cancelled the job tells nothing after its ``job.finished`` (``None`` comes back).
    """
    at = now_iso()
    if status == "STARTED":
        fields: dict[str, Any] = {f"steps.{step}": {"status": status, "startedAt": at, "endedAt": None}}
    elif status == "QUEUED":
        fields = {f"steps.{step}": {"status": status, "startedAt": None, "endedAt": None}}
    else:
        fields = {f"steps.{step}.status": status}
        if status in ("SUCCEEDED", "FAILED"):
            fields[f"steps.{step}.endedAt"] = at
    message = {"type": "job.progress", "step": step, "status": status, "detail": detail or {}}
    return publish(job, message, set_fields=fields, after_seq=after_seq, while_running=while_running)


def step_detail(job: dict[str, Any], step: str, detail: dict[str, Any]) -> dict[str, Any] | None:
    """Progress within a running step (phase, percent): a ``STARTED`` event whose detail moved on."""
    message = {"type": "job.progress", "step": step, "status": "STARTED", "detail": detail}
    return publish(job, message, set_fields={f"steps.{step}.detail": detail}, while_running=True)


def finish(job: dict[str, Any], status: str, *, result: Any = None, error: dict[str, Any] | None = None) -> bool:
    """Close the job with its final status and push ``job.finished``; False if it was already closed."""
    message: dict[str, Any] = {"type": "job.finished", "status": status}
    ended_at = now_iso()
    fields: dict[str, Any] = {"endedAt": ended_at}
    if error is not None:
        message["error"] = error
        fields["error"] = error
    else:
        message["result"] = result
        fields["result"] = result
    closed = publish(job, message, set_fields=fields, close_as=status) is not None
    if closed:
        # The one place every close passes (notify, cancel, the execution-status trigger, a start
        # that failed), and only for the write that won: each job is counted exactly once.
        observability.job_finished(job, status, ended_at)
        status_events.announce(job, status)
    return closed


def _give_back_place(job: dict[str, Any]) -> None:
    """The closed job's place among its user's running jobs (core.quota), by the close that won only.

    Every close passes here (``finish``: the notify step, a cancel, the execution-status trigger,
    the sweeper, a start that failed), given back before ``job.finished`` is pushed.

    A failure here must not undo the close (a retried step would find the job closed and give back
    nothing): it is logged, and the quota heals the entry when the user next reaches the limit.
    """
    try:
        quota.give_back(job["userId"], job["jobId"])
    except Exception:
        logger.exception("could not give back the job's place in its user's quota", extra={"jobId": job["jobId"]})
