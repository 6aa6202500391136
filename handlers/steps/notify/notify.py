"""The last step of every workflow: write the job's final status, then push ``job.finished``.

Success and every ``Catch`` end here. The status and the event are written in one transaction
that only succeeds while the job is ``RUNNING``, so a job closed elsewhere first (a cancel) is
not announced twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import holdings, jobs, publisher
from core.errors import user_error
from core.observability import append_job_keys, logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = jobs.get(event["jobId"], consistent=True)
    if job is None:
        raise LookupError(f"job {event['jobId']} does not exist")
    append_job_keys(job)  # the step's input names only the job: the record has the user and execution
    status = event["status"]
    # Given back before job.finished is pushed, as the quota's place is (core.publisher): a client
    # told that the job ended may start its next git job on the project at once, instead of meeting
    # this job's lock (409 ProjectBusy). Idempotent, so a retried notify gives back nothing twice.
    holdings.give_back(job)
    if status == "SUCCEEDED":
        closed = publisher.finish(job, status, result=event.get("result"))
    else:
        closed = publisher.finish(job, status, error=user_error(event.get("error")))
    if not closed:  # counted (JobsFinished) by whoever closed it, in publisher.finish
        logger.info("job was already closed", extra={"status": job["status"]})
    return {"jobId": job["jobId"], "status": status, "closed": closed}
