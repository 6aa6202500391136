"""The last step of every workflow: write the job's final status, then push ``job.finished``.

Success and every ``Catch`` end here. The status and the event are written in one transaction
that only succeeds while the job is ``RUNNING``, so a job closed elsewhere first (a cancel) is
not announced twice.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from core import holdings, jobs, publisher

logger = Logger()
metrics = Metrics()


def user_error(caught: dict[str, Any] | None) -> dict[str, Any]:
    """A Step Functions ``Catch`` result (``Error``, ``Cause``) as the contract's ``{code, message}``.

    A Lambda's cause is its error payload (``errorMessage``, ``errorType``, ``stackTrace``): the
    user gets the message, never the stack trace, and the ``details`` of a
    ``StepErrorWithDetails`` (whose message is ``{"message", "details"}``) or of a build worker's
    ``SendTaskFailure`` (whose cause is ``{"errorMessage", "details"}``).
    """
    caught = caught or {}
    code = caught.get("Error") or "Failed"
    cause = caught.get("Cause") or ""
    message = cause
    details = None
    try:
        payload = json.loads(cause)
        if isinstance(payload, dict):
            message = payload.get("errorMessage") or payload.get("message") or code
            if isinstance(payload.get("details"), list):  # a worker's SendTaskFailure (builds)
                details = payload["details"]
        inner = json.loads(message) if isinstance(message, str) and message.startswith("{") else None
        if isinstance(inner, dict) and "message" in inner and isinstance(inner.get("details"), list):
            message, details = inner["message"], inner["details"]
    except ValueError:
        pass
    error: dict[str, Any] = {"code": code, "message": str(message)[:1000] or code}
    if details:
        error["details"] = details[:200]
    return error


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = jobs.get(event["jobId"], consistent=True)
    if job is None:
        raise LookupError(f"job {event['jobId']} does not exist")
    logger.append_keys(jobId=job["jobId"], userId=job["userId"], executionArn=job.get("executionArn"))
    status = event["status"]
    try:
        if status == "SUCCEEDED":
            closed = publisher.finish(job, status, result=event.get("result"))
        else:
            closed = publisher.finish(job, status, error=user_error(event.get("error")))
    finally:
        holdings.give_back(job)
    if closed:
        metrics.add_dimension(name="status", value=status)
        metrics.add_metric(name="JobsFinished", unit=MetricUnit.Count, value=1)
    else:
        logger.info("job was already closed", extra={"status": job["status"]})
    return {"jobId": job["jobId"], "status": status, "closed": closed}
