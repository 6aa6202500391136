"""The Start Job trigger against moto: what starts a job, and what is dead-lettered with which reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from core import jobs, submission
from core.errors import Throttled
from longrun import dead_letters
from triggers import start_job

TRUSTED = "com.example.ci"


def _event(detail: Any, source: str = TRUSTED, event_id: str = "e-1", detail_type: str = "Start Job") -> dict:
    return {"version": "0", "id": event_id, "detail-type": detail_type, "source": source, "account": "123456789012",
            "time": "2026-11-26T08:00:00Z", "region": "us-east-1", "resources": [], "detail": detail}  # fmt: skip


def _record(body: Any, message_id: str = "m-1", receives: int = 1) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": "r", "body": body if isinstance(body, str) else json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receives)}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            "awsRegion": "us-east-1"}  # fmt: skip


@pytest.fixture
def trusted(aws, monkeypatch):
    monkeypatch.setenv("TRUSTED_EVENT_SOURCES", f"longrun.local, {TRUSTED}")
    return aws


def _dead_letters(aws) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=aws.env["START_JOB_DEAD_LETTER_QUEUE_URL"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return messages


def _jobs(aws, user: str) -> list[dict[str, Any]]:
    return jobs.query_page(user_id=user, project_id=None, status=None, limit=100, start_key=None)[0]


def test_a_trusted_valid_event_starts_the_job_for_the_user_it_names(trusted, context):
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "from-ci"}}
    answer = start_job.handler({"Records": [_record(_event(detail))]}, context)
    assert answer == {"batchItemFailures": []}
    [job] = _jobs(trusted, "dora")
    assert job["type"] == "create-project" and job["params"] == {"name": "from-ci", "template": "web-app"}
    executions = trusted.client("stepfunctions").list_executions(stateMachineArn=trusted.state_machine)["executions"]
    assert [e["executionArn"] for e in executions] == [job["executionArn"]]
    assert _dead_letters(trusted) == []


def test_a_duplicate_delivery_gets_the_same_job(trusted, context):
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "twice"}}
    for message_id in ("m-1", "m-2"):  # the same EventBridge event, delivered twice
        start_job.handler({"Records": [_record(_event(detail, event_id="same"), message_id)]}, context)
    assert len(_jobs(trusted, "dora")) == 1


def test_the_same_idempotency_key_with_another_detail_is_kept_as_a_conflict(trusted, context):
    first = {"userId": "dora", "type": "create-project", "params": {"name": "one"}, "idempotencyKey": "k"}
    second = {**first, "params": {"name": "two"}}
    start_job.handler({"Records": [_record(_event(first, event_id="a"))]}, context)
    start_job.handler({"Records": [_record(_event(second, event_id="b"))]}, context)
    [letter] = _dead_letters(trusted)
    assert json.loads(letter["Body"])["reason"]["code"] == "Conflict"
    assert len(_jobs(trusted, "dora")) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_event({"userId": "dora", "type": "create-project", "params": {"name": "abc"}}, source="evil"),
         "UntrustedSource"),
        (_event({"userId": "dora", "type": "create-project", "params": {"name": "abc"}}, detail_type="Stop Job"),
         "MalformedEvent"),
        ("not json", "MalformedEvent"),
        (_event("a string detail"), "MalformedEvent"),
        (_event({"userId": "has space", "type": "create-project", "params": {"name": "abc"}}), "ValidationError"),
        (_event({"userId": "dora", "type": "sync", "projectId": "prj-unknown", "params": {}}), "NotFound"),
    ],
    ids=["untrusted", "detail-type", "not-json", "detail-not-object", "bad-user", "unknown-project"],
)  # fmt: skip
def test_events_that_cannot_start_a_job_are_kept_with_their_reason(trusted, context, body, code):
    assert start_job.handler({"Records": [_record(body)]}, context) == {"batchItemFailures": []}
    [letter] = _dead_letters(trusted)
    kept = json.loads(letter["Body"])
    assert kept["reason"]["code"] == code
    assert letter["MessageAttributes"]["reason"]["StringValue"] == code
    assert kept["event"] == body
    assert _jobs(trusted, "dora") == []


def test_every_violation_is_listed_with_its_path_in_the_event(trusted, context):
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "NO", "template": 3}, "x": 1}
    start_job.handler({"Records": [_record(_event(detail))]}, context)
    [letter] = _dead_letters(trusted)
    paths = [d["path"] for d in json.loads(letter["Body"])["reason"]["details"]]
    assert paths == ["detail.x"]  # the envelope is checked first: an unknown field
    detail.pop("x")
    start_job.handler({"Records": [_record(_event(detail), "m-2")]}, context)
    letters = _dead_letters(trusted)
    found = [json.loads(m["Body"])["reason"] for m in letters]
    assert any({d["path"] for d in r.get("details", [])} == {"detail.params.name", "detail.params.template"}
               for r in found), found  # fmt: skip


def test_a_transient_failure_is_retried_then_dead_lettered_with_its_reason(trusted, context, monkeypatch):
    real = submission.submit

    def throttled(user: str, body: dict[str, Any], *more: Any) -> Any:
        if body["params"]["name"] == "later":
            raise Throttled("slow down")
        return real(user, body, *more)

    monkeypatch.setattr(submission, "submit", throttled)
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "later"}}
    with pytest.raises(BatchProcessingError):  # the whole batch failed: SQS delivers it all again
        start_job.handler({"Records": [_record(_event(detail), receives=1)]}, context)
    ok = {"userId": "dora", "type": "create-project", "params": {"name": "now"}}
    batch = [_record(_event(detail), "m-1"), _record(_event(ok, event_id="e-2"), "m-2")]
    answer = start_job.handler({"Records": batch}, context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}, "only the failed event is delivered again"
    assert _dead_letters(trusted) == []
    answer = start_job.handler({"Records": [_record(_event(detail), receives=5)]}, context)
    assert answer == {"batchItemFailures": []}
    [letter] = _dead_letters(trusted)
    kept = json.loads(letter["Body"])
    assert kept["reason"]["code"] == "StartFailed" and "slow down" in kept["reason"]["message"]
    assert kept["attempts"] == 5


def test_nothing_is_trusted_unless_the_deployment_says_so(aws, context):
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "abc"}}
    start_job.handler({"Records": [_record(_event(detail, source="longrun.local"))]}, context)
    [letter] = _dead_letters(aws)
    assert json.loads(letter["Body"])["reason"]["code"] == "UntrustedSource"


# --- reading dead letters -----------------------------------------------------------------------


def _message(body: Any, attributes: dict[str, str] | None = None, receives: int = 1) -> dict[str, Any]:
    typed = {k: {"StringValue": v, "DataType": "String"} for k, v in (attributes or {}).items()}
    return {"MessageId": "m", "ReceiptHandle": "r", "Body": body if isinstance(body, str) else json.dumps(body),
            "Attributes": {"ApproximateReceiveCount": str(receives)}, "MessageAttributes": typed}  # fmt: skip


def test_dead_letters_are_read_in_each_of_their_three_forms():
    event = _event({"userId": "dora"})
    by_trigger = dead_letters.parse(_message({"reason": {"code": "UntrustedSource", "message": "m"}, "event": event,
                                              "deadLetteredAt": "t", "attempts": 1}))  # fmt: skip
    assert by_trigger.reason["code"] == "UntrustedSource" and by_trigger.event == event
    by_eventbridge = dead_letters.parse(_message(event, {"ERROR_CODE": "SQS_FAILURE", "ERROR_MESSAGE": "denied"}))
    assert by_eventbridge.reason["code"] == "NotDelivered" and "SQS_FAILURE" in by_eventbridge.reason["message"]
    by_redrive_policy = dead_letters.parse(_message(event, receives=6))
    assert by_redrive_policy.reason["code"] == "TriggerFailed" and by_redrive_policy.attempts == 6
    assert dead_letters.parse(_message("{broken")).event == "{broken"


def test_only_events_that_can_be_put_again_are_redriven():
    assert dead_letters._entry(_event({"a": 1}), "bus")["Source"] == TRUSTED
    for bad in (_event({"a": 1}, source="aws.s3"), "text", _event("detail")):
        with pytest.raises(ValueError):
            dead_letters._entry(bad, "bus")
