"""``Job Status Change`` events on the stack's event bus, for other systems to follow.

One event when a job reaches its final status, sent by whoever closed it (the notify step, a
cancel, the execution-status trigger: the one conditional write that succeeded), after the status
is written, so a consumer that reads the job finds what the event says. (``RUNNING`` is not
announced yet: from the API it cost every ``POST /jobs`` a PutEvents, and through the
execution-status trigger a Lambda per job; it comes with the rest of the EventBridge work.)
EventBridge is the consumers' contract; a failure to reach it is logged and counted, and never
fails the job.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger

from core import aws
from core.clock import now_iso

logger = Logger(child=True)

SOURCE = "longrun.jobs"
DETAIL_TYPE = "Job Status Change"


def announce(job: dict[str, Any], status: str) -> None:
    bus = os.environ.get("EVENT_BUS_NAME")
    if not bus:
        return
    detail = {
        "jobId": job["jobId"],
        "projectId": job.get("projectId"),
        "userId": job["userId"],
        "type": job["type"],
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
