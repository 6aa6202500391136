"""The job sweeper: on a schedule, closes jobs whose execution ended while no one told them.

The execution-status trigger closes a job whose execution ended outside its workflow's steps, from
Step Functions' "Execution Status Change" events. EventBridge delivers those at least once, but an
event can still be lost to longrun: a rule disabled during an incident, a trigger message that
ran out of attempts into its dead-letter queue. Then the job would say ``RUNNING`` forever. Every
few minutes (an EventBridge schedule rule that invokes this function directly) the sweeper lists
each state machine's executions that ended ``FAILED``, ``TIMED_OUT`` or ``ABORTED`` within the
window and hands each to the trigger's own :func:`triggers.executions.close`, the same conditional
write: a job closed already (nearly all of them) is left as it is, and the user still gets one
``job.finished``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, schemas
from core.config import state_machine_arn
from core.observability import logger, tracer
from triggers import executions

ENDED = ("FAILED", "TIMED_OUT", "ABORTED")


def window() -> timedelta:
    """How far back a sweep looks: several schedule periods, so one sweep that failed is covered by the next."""
    return timedelta(minutes=int(os.environ.get("SWEEP_WINDOW_MINUTES", "60")))


def _ended_since(machine: str, status: str, since: datetime) -> list[dict[str, Any]]:
    """The machine's executions with ``status`` that stopped after ``since`` (newest first, so stop early)."""
    found: list[dict[str, Any]] = []
    pages = aws.client("stepfunctions").get_paginator("list_executions")
    for page in pages.paginate(stateMachineArn=machine, statusFilter=status):
        for item in page["executions"]:
            if item["startDate"] < since - timedelta(days=1):  # started long before: older ends follow
                return found
            stopped = item.get("stopDate")
            if stopped is not None and stopped >= since:
                found.append(item)
    return found


def _detail(execution_arn: str) -> dict[str, Any]:
    """What an "Execution Status Change" event would have said of the execution."""
    described = aws.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return {
        "executionArn": execution_arn,
        "status": described["status"],
        "input": described.get("input"),
        "error": described.get("error"),
        "cause": described.get("cause"),
        "redriveCount": described.get("redriveCount", 0),
    }


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Close every job whose execution ended within the window while the job stayed open."""
    since = (now or datetime.now(UTC)) - window()
    looked = closed = 0
    for job_type in schemas.job_types():
        machine = state_machine_arn(job_type)
        if machine is None:
            continue
        for status in ENDED:
            try:
                ended = _ended_since(machine, status, since)
            except ClientError as e:
                # A kind whose schema is deployed but whose machine is not (yet): it has no jobs to close,
                # and the other kinds are still swept.
                if e.response["Error"]["Code"] != "StateMachineDoesNotExist":
                    raise
                logger.warning("no state machine for a job type", extra={"type": job_type, "stateMachineArn": machine})
                break
            for item in ended:
                looked += 1
                if executions.close(_detail(item["executionArn"])):
                    closed += 1
    return {"looked": looked, "closed": closed}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    counts = sweep()
    if counts["closed"]:
        logger.warning("closed jobs whose end no event told", extra={**counts, "event": json.dumps(event)[:500]})
    else:
        logger.info("sweep", extra=counts)
    return counts
