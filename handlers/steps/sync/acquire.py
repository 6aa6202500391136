"""Acquire: the sync's turn on the project, and (for an upload-started sync) the uploads it copies.

An upload-started sync first lets the burst end: while uploads keep joining its request (less
than two seconds apart) it answers ``acquired: false`` and waits again. One job changes a
workspace at a time. A sync does not refuse to run when another job holds the
project: it answers ``acquired: false`` and the workflow waits and asks again, so a sync that
arrives while another runs is queued, not lost. Once it holds the project, an upload-started sync
takes the waiting request (the keys uploaded so far); uploads after that start the next job.
"""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import locks, publisher, sync_requests
from core.observability import append_job_keys, logger, tracer
from steps.sync import work

WAIT_FOR_PROJECT_SECONDS = 2  # how often a queued sync asks again
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
        return {"acquired": False, "waiting": True, "waitSeconds": WAIT_FOR_PROJECT_SECONDS}
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
