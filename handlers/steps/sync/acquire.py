"""Acquire: the sync's turn on the project, and (for an upload-started sync) the uploads it copies.

An upload-started sync first lets the burst end: while uploads keep joining its request (less
than two seconds apart) it answers ``acquired: false`` and waits again. One job changes a
workspace at a time. A sync does not refuse to run when another job holds the
project: it answers ``acquired: false`` and the workflow waits and asks again, so a sync that
arrives while another runs is queued, not lost. Once it holds the project, an upload-started sync
takes the waiting request (the keys uploaded so far); uploads after that start the next job.

Each turn of that wait loop writes 9 events to the execution's history, and Step Functions ends an
execution at 25,000 (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): at
a turn every 2 s a sync queued 1.5 h behind a busy project failed there. So a queued sync asks
again later each time (2 s, doubled up to a minute) and gives up with ``ProjectBusy`` once it has
waited ``Tuning.max_queue_seconds`` (an hour): about 70 turns, some 650 events, and an error
that says what happened instead of a history that ran out. Gathering uploads is bounded by
``sync_requests.MAX_GATHER_MS``.
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, locks, projects, publisher, sync_requests
from core.config import settings
from core.observability import append_job_keys, logger, tracer
from steps.sync import work
from steps.sync.errors import ProjectGone

FIRST_WAIT_SECONDS = 2  # a queued sync asks again this soon, then twice as late each time
MAX_WAIT_SECONDS = 60  # up to this: a turn of the wait loop a minute once the wait is long
INLINE_KEYS_BYTES = 16 * 1024  # uploaded keys up to this size ride in the state (its limit is 256 KiB)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    append_job_keys(event)
    job_id, project_id = event["jobId"], event["projectId"]
    before = event.get("listing") or {}
    if event.get("origin") == "upload" and (quiet_in := sync_requests.quiet_in(project_id, job_id)) > 0:
        # Uploads still arriving join this job: wait until the burst has been quiet long enough.
        return {"acquired": False, "gathering": True, "waitSeconds": math.ceil(quiet_in)}
    holder = locks.acquire(project_id, job_id, "sync", scoped=True)  # as the project (core.scoped)
    if holder is not None:
        if not before.get("waiting"):
            publisher.progress(event, "queue", "STARTED", {"waitingFor": holder})
        return queued(before, holder, work.Tuning.of(event).max_queue_seconds)
    _refuse_if_gone(project_id)
    if before.get("waiting"):
        publisher.progress(event, "queue", "SUCCEEDED")
    listing: dict[str, Any] = {"acquired": True, "done": False, "cursor": None, "page": 0, "batches": 0}
    if event.get("origin") == "upload":
        taken = sync_requests.take(project_id, job_id)
        if taken is not None and taken[0] and not taken[1]:
            if sum(len(k) for k in taken[0]) <= INLINE_KEYS_BYTES:
                listing["keys"] = taken[0]  # a few keys travel in the state; many as an S3 reference
            else:
                listing["keysRef"] = f"{work.job_prefix(job_id)}keys.json"
                work.put_json(listing["keysRef"], taken[0])
        logger.info("uploads taken", extra={"keys": len(taken[0]) if taken else 0, "full": bool(taken and taken[1])})
    return listing


def _refuse_if_gone(project_id: str) -> None:
    """``ProjectGone`` for a project deleted (or being deleted) while the sync was queued behind its delete.

    Its lock is given back by NotifyFailure; the sync must not make the workspace or the manifest again.
    """
    table = aws.project_table(project_id, settings().projects_table)  # as the project (core.scoped)
    item = table.get_item(Key=projects.project_key(project_id), ConsistentRead=True).get("Item")
    if item is None or projects.is_deleting(item):
        raise ProjectGone(f"project {project_id} was deleted while this sync waited its turn; nothing to sync")


def next_wait(before: dict[str, Any], max_queue_seconds: int) -> tuple[int, int]:
    """(seconds to wait now, seconds waited once it is over) for a sync still queued; (0, waited) when it must give up.

    The wait doubles from FIRST_WAIT_SECONDS up to MAX_WAIT_SECONDS, and the last one is cut so
    the total never passes ``max_queue_seconds``.
    """
    waited = int(before.get("waited", 0)) if before.get("waiting") else 0
    last = int(before.get("waitSeconds", 0)) if before.get("waiting") else 0
    wait = min(max(FIRST_WAIT_SECONDS, 2 * last), MAX_WAIT_SECONDS, max_queue_seconds - waited)
    return max(wait, 0), waited + max(wait, 0)


def queued(before: dict[str, Any], holder: str, max_queue_seconds: int) -> dict[str, Any]:
    """The answer of a sync that found the project held: wait again, or ``ProjectBusy`` past the bound."""
    wait, waited = next_wait(before, max_queue_seconds)
    if wait <= 0:
        waited_for = f"{waited // 60} minutes" if waited >= 120 else f"{waited} seconds"
        raise locks.ProjectBusy(
            f"the project stayed busy (job {holder} holds it) for the {waited_for} a sync waits its turn; "
            "start the sync again once that job has finished"
        )
    return {"acquired": False, "waiting": True, "waitSeconds": wait, "waited": waited}
