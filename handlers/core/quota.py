"""The per-user limit of concurrent jobs: a user with ``MaxConcurrentJobsPerUser`` jobs ``RUNNING`` is ``429``.

One item per user in the projects table, ``quota#<userId>``, holds ``running``: a map of the
user's running job ids to the epoch second each took its place. A start takes a place with one
conditional ``UpdateItem`` (the map has fewer entries than the limit, or already names this job)
before the job is written, so the limit is exact however many starts race: DynamoDB applies each
write to the item atomically, and no read decides anything.

A place is given back by :func:`give_back`, a conditional ``REMOVE`` of the job's own entry:
:func:`core.publisher.finish` calls it for the writer whose close won (the notify step, a cancel,
the execution-status trigger, the sweeper, a start that failed), and a start that fails before
its job exists calls it too. Removing an entry that is gone is a no-op, so a place is never given
back twice, and never for another job. A retry (:mod:`core.retries`) takes the job's place again.

Holding job ids rather than a count makes the item self-healing. A crash between a take and the
job's write, or between a close and its give-back, leaves an entry that no job will remove; such
entries are only in the way when the user is at the limit, so that is when they are cleared:
before a start is refused, :func:`_heal` reads the holders' jobs and removes each entry whose job
is closed, or does not exist though its place was taken longer ago than any start takes
(``START_GRACE_SECONDS``). No periodic reconcile is needed, and the item never holds more than the
limit's worth of entries.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import ClientError

from core import aws
from core.clock import epoch_seconds
from core.config import settings
from core.errors import Throttled
from core.observability import logger

DEFAULT_LIMIT = 20
# What a refused start tells the client to wait: a job takes seconds to minutes, so sooner is noise.
RETRY_AFTER_SECONDS = 10
# Longer than any function that starts jobs may run (API Gateway gives up at 29 s): an entry this
# old whose job does not exist was left by a start that crashed before writing its job.
START_GRACE_SECONDS = 120
_RUNNING = "running"


def limit() -> int:
    """The deployment's ``MaxConcurrentJobsPerUser`` (the template sets ``MAX_CONCURRENT_JOBS_PER_USER``)."""
    return int(os.environ.get("MAX_CONCURRENT_JOBS_PER_USER", str(DEFAULT_LIMIT)))


def _key(user_id: str) -> dict[str, str]:
    return {"pk": f"quota#{user_id}"}


def _table() -> Any:
    return aws.table(settings().projects_table)


def _is(e: ClientError, code: str) -> bool:
    return e.response.get("Error", {}).get("Code") == code


def take(user_id: str, job_id: str) -> None:
    """Take a place for ``job_id`` among the user's running jobs; :class:`Throttled` (429) if none is free.

    Taking a place the job holds already (a repeated step, a retry whose give-back was lost) succeeds.
    """
    most = limit()
    for attempt in range(3):  # create the item, or heal it, at most twice: then the answer is final
        try:
            _table().update_item(
                Key=_key(user_id),
                UpdateExpression="SET #running.#job = :now",
                # attribute_exists first: size() of a missing map is false on DynamoDB (and an error in moto)
                ConditionExpression=(
                    "attribute_exists(#running) AND (size(#running) < :most OR attribute_exists(#running.#job))"
                ),
                ExpressionAttributeNames={"#running": _RUNNING, "#job": job_id},
                ExpressionAttributeValues={":now": epoch_seconds(), ":most": most},
            )
            return
        except ClientError as e:
            if not _is(e, "ConditionalCheckFailedException"):
                raise
        holders = _holders(user_id)
        if holders is None:  # the user's first job: the item and its empty map, then take again
            _table().update_item(
                Key=_key(user_id),
                UpdateExpression="SET #running = if_not_exists(#running, :empty)",
                ExpressionAttributeNames={"#running": _RUNNING},
                ExpressionAttributeValues={":empty": {}},
            )
            continue
        if attempt < 2 and (len(holders) < most or _heal(user_id, holders)):
            continue  # a place came free between the write and the read, or the heal freed one
        break
    raise Throttled(
        f"you have {most} jobs running, the most this deployment allows at once "
        "(MaxConcurrentJobsPerUser); start this one when one of them has finished",
        [{"path": "(user)", "message": f"{most} of {most} concurrent jobs are running"}],
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def give_back(user_id: str, job_id: str, taken_at: int | None = None) -> bool:
    """Give back the place ``job_id`` holds; False if it holds none (given back already, never taken).

    With ``taken_at``, only that very take is removed (the heal: a retry may have taken it anew).
    """
    condition = "attribute_exists(#running.#job)"
    values: dict[str, Any] = {}
    if taken_at is not None:
        condition = "#running.#job = :at"
        values[":at"] = taken_at
    try:
        _table().update_item(
            Key=_key(user_id),
            UpdateExpression="REMOVE #running.#job",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#running": _RUNNING, "#job": job_id},
            **({"ExpressionAttributeValues": values} if values else {}),
        )
        return True
    except ClientError as e:
        if _is(e, "ConditionalCheckFailedException"):
            return False
        raise


def running(user_id: str) -> dict[str, int]:
    """The user's place holders: job id → epoch second of the take (operators, tests)."""
    return _holders(user_id) or {}


def _holders(user_id: str) -> dict[str, int] | None:
    item = _table().get_item(Key=_key(user_id), ConsistentRead=True).get("Item")
    if item is None or _RUNNING not in item:
        return None
    return {job_id: int(at) for job_id, at in item[_RUNNING].items()}


def _heal(user_id: str, holders: dict[str, int]) -> int:
    """Remove the entries no job will give back (see the module's docstring); how many were removed."""
    statuses = _statuses(list(holders))
    now = epoch_seconds()
    healed = 0
    for job_id, taken_at in holders.items():
        status = statuses.get(job_id)
        stale = status not in (None, "RUNNING") or (status is None and now - taken_at > START_GRACE_SECONDS)
        if stale and give_back(user_id, job_id, taken_at):
            healed += 1
            logger.warning("gave back a place its job never gave back", extra={"jobId": job_id, "status": status})
    return healed


def _statuses(job_ids: list[str]) -> dict[str, str]:
    """Each existing job's status, read with BatchGetItem (a job that does not exist is left out)."""
    table = settings().jobs_table
    found: dict[str, str] = {}
    keys = [{"jobId": job_id} for job_id in job_ids]
    client = aws.table(table).meta.client
    while keys:
        batch, keys = keys[:100], keys[100:]
        request: dict[str, Any] = {
            table: {
                "Keys": batch,
                "ConsistentRead": True,
                "ProjectionExpression": "jobId, #status",
                "ExpressionAttributeNames": {"#status": "status"},
            }
        }
        while request:
            page = client.batch_get_item(RequestItems=request)
            for item in page.get("Responses", {}).get(table, []):
                found[item["jobId"]] = item["status"]
            request = page.get("UnprocessedKeys") or {}
    return found
