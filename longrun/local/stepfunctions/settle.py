"""At start, end every execution the local cloud's last run left ``RUNNING``, as a lost execution is ended on AWS.

An execution that was running when the local cloud stopped comes back ``RUNNING`` with nothing
running it (:mod:`longrun.local.stepfunctions.persistence`): its task's thread, its task token and
its timers died with the process. Left alone it would hold its job ``RUNNING`` forever, and with it
the project's lock and a place in the user's quota. On AWS such an execution is ended by a
``StopExecution`` naming why (the error and cause are the stop's own:
https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html), and so it
is here, through the same API: each one ends ``ABORTED`` with :data:`ERROR` and :data:`CAUSE`, an
``ExecutionAborted`` history event, and an "Execution Status Change" event that the stack's
execution-status trigger turns into the job's one final status and one ``job.finished``, the lock
and the quota given back. ``POST /jobs/{id}/retry`` then redrives it from the state it was in, as
AWS redrives an ``ABORTED`` execution.

``longrun local up`` calls :func:`settle_lost_executions` once, after the saved data is restored and
before the fronts, the pollers and the build workers start: nothing of this run has started an
execution yet, so every ``RUNNING`` execution that started before the call is one of the last run's.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Any

ERROR = "LocalCloudStopped"
CAUSE = (
    "The local cloud stopped while this execution ran, and a running execution does not survive a restart "
    "of the local cloud. Redrive it (POST /jobs/{jobId}/retry) to run it again from the step it was in."
)
log = logging.getLogger("longrun.local.stepfunctions.settle")


def lost_executions(sfn: Any, state_machine_arns: Iterable[str], before: datetime.datetime) -> list[str]:
    """The ARNs of the machines' executions that are ``RUNNING`` and started before ``before``."""
    lost = []
    for machine in state_machine_arns:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING")
        for page in pages:
            lost += [e["executionArn"] for e in page["executions"] if e["startDate"] < before]
    return lost


def settle_lost_executions(sfn: Any, state_machine_arns: Iterable[str]) -> list[str]:
    """Stop every ``RUNNING`` execution of the machines with :data:`ERROR` and :data:`CAUSE`; the ARNs stopped."""
    lost = lost_executions(sfn, list(state_machine_arns), datetime.datetime.now(tz=datetime.UTC))
    for arn in lost:
        sfn.stop_execution(executionArn=arn, error=ERROR, cause=CAUSE)
    if lost:
        log.warning("stopped %d executions the last run left RUNNING (%s): their jobs end FAILED", len(lost), ERROR)
    return lost
