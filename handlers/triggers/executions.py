"""The execution-status trigger: closes a job whose execution ended where no step of longrun ran.

Step Functions puts an "Execution Status Change" event on the default bus when an execution ends;
a rule passes those of longrun's state machines that ended ``FAILED``, ``TIMED_OUT`` or
``ABORTED`` to an SQS queue read by this function. Most of them find their job closed already (the
notify step ran before the workflow's Fail state; a cancel closed it before the stop). The others
ended outside: the state machine's own ``TimeoutSeconds``, a Stop from the console or from behind
the API's back (one that names its error fails the job with it), a notify step that ran out of
retries. This function closes those, with the same conditional write as the notify step (only
while the job is ``RUNNING``), so whichever comes first tells the user and the other writes
nothing: one ``job.finished``. It also gives back what the job held (the project's lock, its
upload request).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core import holdings, jobs, publisher
from core.errors import user_error
from core.observability import append_job_keys, logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)

# The execution's end → the job's final status and the error the user reads.
OUTCOMES = {
    "TIMED_OUT": ("TIMED_OUT", "ExecutionTimedOut", "the workflow ran past its time limit"),
    "ABORTED": ("CANCELLED", "ExecutionAborted", "the workflow was stopped outside longrun"),
    "FAILED": ("FAILED", "ExecutionFailed", "the workflow failed"),
}
# The error DELETE /jobs/{id} stops an execution with (handlers/api/app.py): a cancel, not a failure.
CANCEL_ERROR = "Cancelled"


def _job_id(detail: dict[str, Any]) -> str | None:
    """The job the execution ran, from its input (longrun's executions carry ``jobId``)."""
    try:
        data = json.loads(detail.get("input") or "null")
    except ValueError:
        return None
    job_id = data.get("jobId") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None


def _own_job(detail: dict[str, Any]) -> dict[str, Any] | None:
    """The job whose execution this is: never a Distributed Map's child or a stray execution."""
    job_id = _job_id(detail)
    job = jobs.get(job_id, consistent=True) if job_id else None
    if job is None or job.get("executionArn") != detail.get("executionArn"):
        logger.info("not a job's own execution; ignored", extra={"executionArn": detail.get("executionArn")})
        return None
    return job


def close(detail: dict[str, Any]) -> bool:
    """Close the execution's job if it is still ``RUNNING``; True if this call closed it."""
    outcome = OUTCOMES.get(str(detail.get("status")))
    if outcome is None:
        return False
    append_job_keys(executionArn=detail.get("executionArn"))
    job = _own_job(detail)
    if job is None:
        return False
    append_job_keys(job)
    job_id = job["jobId"]
    if int(detail.get("redriveCount") or 0) != int(job.get("attempt", 0)):
        # An earlier attempt's end, arriving after POST /jobs/{id}/retry redrove the execution.
        logger.info("the end of an earlier attempt; ignored", extra={"redriveCount": detail.get("redriveCount")})
        return False
    status, code, message = outcome
    error = {"code": code, "message": message}
    if detail.get("status") == "ABORTED" and detail.get("error"):
        # A Stop that named its reason (StopExecution's error and cause, which the event carries as
        # DescribeExecution does): the job ends with that reason as its error. longrun's own cancel
        # (DELETE /jobs/{id}) stops with CANCEL_ERROR and closes the job CANCELLED itself; any other
        # named stop (an operator's, the local cloud's restart) fails the job, and POST /jobs/{id}/retry
        # may redrive it (Step Functions redrives ABORTED executions).
        status = "CANCELLED" if detail["error"] == CANCEL_ERROR else "FAILED"
        error = user_error({"Error": detail["error"], "Cause": detail.get("cause")})
    elif status == "FAILED" and detail.get("error") and not str(detail["error"]).startswith(("States.", "Lambda.")):
        # A step's own error that no Catch of the workflow took: the user reads it as the notify
        # step would have told it, and POST /jobs/{id}/retry can redrive the execution from there.
        error = user_error({"Error": detail["error"], "Cause": detail.get("cause")})
    elif detail.get("error"):
        cause = f" ({str(detail['cause'])[:500]})" if detail.get("cause") else ""
        error["message"] = f"{message}: {detail['error']}{cause}"
    # Given back before job.finished is pushed (as the notify step does): a client told that the job
    # ended may start its next job on the project at once.
    holdings.give_back(job)
    closed = job["status"] == "RUNNING" and publisher.finish(job, status, error=error)
    if closed:
        logger.info("closed a job its workflow left open", extra={"jobId": job_id, "status": status})
        # One metric per job: a batch may close jobs with different statuses.
        with single_metric(name="JobsClosedByExecutionStatus", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="status", value=status)
    return closed


def record_handler(record: SQSRecord) -> None:
    close(json.loads(record.body).get("detail") or {})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
