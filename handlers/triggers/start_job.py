"""The Start Job trigger: ``Start Job`` events on the stack's bus (rule → SQS → this function) start jobs.

Another system puts ``{"source", "detail-type": "Start Job", "detail": {"userId", "type",
"projectId"?, "params", "idempotencyKey"?}}`` on the bus. The rule matches every source, so
that an event from an untrusted one is seen and kept rather than silently unmatched; this
function starts a job only for a source listed in ``TRUSTED_EVENT_SOURCES``, for a detail valid
against ``schemas/events/start-job.json``, exactly as ``POST /jobs`` would
(:func:`core.submission.submit`: the same checks, error codes and idempotency).

An event that starts nothing is never dropped: it goes to the dead-letter queue with its reason
(``{"reason": {"code", "message", "details"?}, "event", "deadLetteredAt", "attempts"}``), which
``longrun ops dead-letters`` lists and ``--redrive`` puts back on the bus. A failure that may pass
(a throttle, a service error) is retried through SQS, and dead-lettered with its reason on the
last attempt. EventBridge delivers at least once: an event without ``idempotencyKey`` uses its
EventBridge ``id`` as one, so a duplicate delivery gets the same job.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, schemas, submission
from core.clock import now_iso
from core.errors import ApiError, ServiceUnavailable, Throttled
from core.observability import append_job_keys, logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)

DETAIL_TYPE = "Start Job"
DETAIL_SCHEMA = "events/start-job.json"
# Errors that may pass on their own: retried through SQS, dead-lettered only on the last attempt.
_TRANSIENT = (Throttled, ServiceUnavailable)


class Refused(Exception):
    """An event that can never start a job as it is: it goes to the dead-letter queue with this reason."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.reason: dict[str, Any] = {"code": code, "message": message}
        if details:
            self.reason["details"] = details


def trusted_sources() -> frozenset[str]:
    return frozenset(s.strip() for s in os.environ.get("TRUSTED_EVENT_SOURCES", "").split(",") if s.strip())


def max_attempts() -> int:
    """The attempt on which a still-failing event is dead-lettered with its reason.

    The queue's own redrive policy allows one more, as a backstop for an attempt that never answered.
    """
    return int(os.environ.get("START_JOB_MAX_ATTEMPTS", "5"))


def _prefixed(details: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Error paths as the event's author sees them: ``params.name`` is ``detail.params.name``."""
    if not details:
        return details
    return [{**d, "path": "detail." + d["path"] if d.get("path") else "detail"} for d in details]


def _parsed(record: SQSRecord) -> Any:
    """The message as JSON, or its text (kept as it came in a dead letter)."""
    try:
        return json.loads(record.body)
    except ValueError:
        return record.body


def _event(message: Any) -> dict[str, Any]:
    if isinstance(message, str):
        raise Refused("MalformedEvent", "the message is not JSON")
    if not isinstance(message, dict) or not isinstance(message.get("detail"), dict):
        raise Refused("MalformedEvent", "the message is not an EventBridge event with a detail object")
    return message


def start(event: dict[str, Any]) -> dict[str, Any]:
    """Start the job an event asks for; :class:`Refused` if it never can."""
    source = event.get("source")
    if source not in trusted_sources():
        raise Refused(
            "UntrustedSource",
            f"events from source {str(source)[:256]!r} may not start jobs; "
            "trusted sources are a deployment setting (TrustedEventSources)",
        )
    if event.get("detail-type") != DETAIL_TYPE:
        raise Refused("MalformedEvent", f"detail-type must be {DETAIL_TYPE!r}")
    detail = event["detail"]
    problems = schemas.violations(DETAIL_SCHEMA, detail)
    if problems:
        raise Refused("ValidationError", "the event's detail is not valid", _prefixed(problems))
    body = {k: detail[k] for k in ("type", "projectId", "params") if k in detail}
    key, key_path = detail.get("idempotencyKey"), "detail.idempotencyKey"
    if key is None and isinstance(event.get("id"), str):
        key, key_path = f"event:{event['id']}"[:128], "id"
    try:
        return submission.submit(detail["userId"], body, key, key_path)
    except _TRANSIENT:
        raise
    except ApiError as e:  # what POST /jobs answers with a 4xx: the same reason, kept with the event
        body = e.body()["error"]
        raise Refused(body["code"], body["message"], _prefixed(body.get("details"))) from None


def dead_letter(record: SQSRecord, event: Any, reason: dict[str, Any]) -> None:
    """Keep the event with its reason, where operators read and redrive it."""
    attempts = int(record.attributes.approximate_receive_count or 1)
    aws.client("sqs").send_message(
        QueueUrl=os.environ["START_JOB_DEAD_LETTER_QUEUE_URL"],
        MessageBody=json.dumps({"reason": reason, "event": event, "deadLetteredAt": now_iso(), "attempts": attempts}),
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason["code"]}},
    )
    logger.warning("event dead-lettered", extra={"reason": reason["code"], "eventId": _event_id(event)})


def _event_id(event: Any) -> str | None:
    return event.get("id") if isinstance(event, dict) else None


def record_handler(record: SQSRecord) -> None:
    append_job_keys()  # nothing of the batch's previous record
    event: Any = _parsed(record)
    try:
        job = start(_event(event))
    except Refused as refused:
        dead_letter(record, event, refused.reason)
        return
    except Exception as e:
        if int(record.attributes.approximate_receive_count or 1) < max_attempts():
            raise  # SQS delivers it again after the visibility timeout
        dead_letter(record, event, {"code": "StartFailed", "message": f"could not start the job: {e}"[:1000]})
        return
    append_job_keys(job)
    logger.info(
        "job started by event",
        extra={
            "jobId": job["jobId"],
            "executionArn": job["executionArn"],
            "userId": job["userId"],
            "source": event.get("source"),
            "eventId": _event_id(event),
        },
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
