"""``Job Status Change`` events on the stack's event bus, for other systems to follow.

Every change of a job's status is announced once, after it is written, so a consumer that reads
the job finds what the event says:

* ``RUNNING`` by whoever writes the job's first event (``seq`` 1, a conditional write only one
  writer wins: in practice the workflow's first step), and again by a retry that puts a failed job
  back to ``RUNNING``. Not by ``POST /jobs`` itself: a PutEvents there would cost every accept its
  latency, and the job's first step follows within milliseconds.
* the final status by whoever closed the job (the notify step, a cancel, the execution-status
  trigger: the one conditional write that succeeded).

EventBridge is the consumers' contract; a failure to reach it is logged, and never fails the job.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger

from core import aws, jobs
from core.clock import now_iso

logger = Logger(child=True)

SOURCE = "longrun.jobs"
DETAIL_TYPE = "Job Status Change"


def announce(job: dict[str, Any], status: str) -> None:
    bus = os.environ.get("EVENT_BUS_NAME")
    if not bus:
        return
    if not job.get("type") or not job.get("userId"):  # a caller that holds only part of the job
        job = jobs.get(job["jobId"]) or job
    detail = {
        "jobId": job["jobId"],
        "projectId": job.get("projectId"),
        "userId": job.get("userId"),
        "type": job.get("type"),
        "status": status,
        "at": now_iso(),
    }
    entry = {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail), "EventBusName": bus}
    try:
        failed = aws.client("events").put_events(Entries=[entry]).get("FailedEntryCount", 0)
    except Exception:
        logger.exception("could not announce a job's status", extra={"jobId": job["jobId"], "status": status})
        return
    if failed:
        logger.error("EventBridge refused a job status event", extra={"jobId": job["jobId"], "status": status})
