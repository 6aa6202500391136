"""A message past its queue's MessageRetentionPeriod is gone, from receives and counts, as SQS deletes it.

Also: the period (and the other integer attributes) must lie in AWS's ranges at CreateQueue and
SetQueueAttributes (API_SetQueueAttributes.html). moto's clock is moved by hand: no 60 s waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local.sqs.conftest import Clock


def _counts(sqs: Any, url: str) -> tuple[int, int, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return tuple(int(attributes[name]) for name in names)  # type: ignore[return-value]


def _queue(sqs: Any, retention: int = 60) -> str:
    return str(sqs.create_queue(QueueName="builds", Attributes={"MessageRetentionPeriod": str(retention),
                                                                 "VisibilityTimeout": "600"})["QueueUrl"])  # fmt: skip


def test_messages_past_retention_are_gone_waiting_or_in_flight(sqs_retention: Any, clock: Clock) -> None:
    url = _queue(sqs_retention)
    for n in range(3):
        sqs_retention.send_message(QueueUrl=url, MessageBody=f"old-{n}")
    (in_flight,) = sqs_retention.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
    sqs_retention.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=30)
    assert _counts(sqs_retention, url) == (2, 1, 1)
    clock.advance(45)
    sqs_retention.send_message(QueueUrl=url, MessageBody="young")
    clock.advance(16)  # the first four are 61 s old, past the queue's 60 s; "young" is 16 s old
    assert _counts(sqs_retention, url) == (1, 0, 0)
    reply = sqs_retention.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert [m["Body"] for m in reply["Messages"]] == ["young"]
    assert _counts(sqs_retention, url) == (0, 1, 0)
    # The consumer of the expired message finishing late: its delete is answered as a second delete is.
    sqs_retention.delete_message(QueueUrl=url, ReceiptHandle=in_flight["ReceiptHandle"])
    clock.advance(60)
    assert _counts(sqs_retention, url) == (0, 0, 0)
    assert sqs_retention.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_shorter_period_set_later_expires_messages_already_there(sqs_retention: Any, clock: Clock) -> None:
    url = _queue(sqs_retention, retention=3600)
    sqs_retention.send_message(QueueUrl=url, MessageBody="m")
    clock.advance(120)
    assert _counts(sqs_retention, url) == (1, 0, 0)
    sqs_retention.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "60"})
    assert _counts(sqs_retention, url) == (0, 0, 0)


def test_moto_alone_keeps_expired_messages_and_hands_out_none_behind_them(sqs_moto: Any, clock: Clock) -> None:
    url = _queue(sqs_moto)
    sqs_moto.send_message(QueueUrl=url, MessageBody="old")
    clock.advance(61)
    sqs_moto.send_message(QueueUrl=url, MessageBody="young")
    assert _counts(sqs_moto, url) == (2, 0, 0)  # the gap: the expired message is still counted
    assert sqs_moto.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages") is None
    assert _counts(sqs_moto, url) == (1, 1, 0)  # it was "received" (hidden), and "young" was not handed out


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("MessageRetentionPeriod", "0"),
        ("MessageRetentionPeriod", "-5"),
        ("MessageRetentionPeriod", "four days"),
        ("DelaySeconds", "901"),
        ("VisibilityTimeout", "43201"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
    ],
)
def test_attributes_outside_aws_ranges_are_refused(sqs_retention: Any, name: str, value: str) -> None:
    with pytest.raises(ClientError) as refused:
        sqs_retention.create_queue(QueueName="refused", Attributes={name: value})
    assert refused.value.response["Error"]["Code"] == "InvalidAttributeValue"
    assert name in refused.value.response["Error"]["Message"]
    assert "refused" not in " ".join(sqs_retention.list_queues().get("QueueUrls", []))
    url = _queue(sqs_retention)
    with pytest.raises(ClientError) as refused:
        sqs_retention.set_queue_attributes(QueueUrl=url, Attributes={name: value})
    assert refused.value.response["Error"]["Code"] == "InvalidAttributeValue"


@pytest.mark.parametrize("value", ["60", "345600", "1209600"])
def test_the_range_s_ends_are_accepted(sqs_retention: Any, value: str) -> None:
    url = sqs_retention.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": value})["QueueUrl"]
    attributes = sqs_retention.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert attributes["Attributes"]["MessageRetentionPeriod"] == value


def test_moto_alone_takes_a_period_out_of_range(sqs_moto: Any) -> None:
    url = sqs_moto.create_queue(QueueName="taken", Attributes={"MessageRetentionPeriod": "1209601"})["QueueUrl"]
    assert url  # the gap: AWS answers InvalidAttributeValue


def test_the_template_s_queues_are_in_range(translated: Any) -> None:
    """What `local up` now checks at CreateQueue: the template's own values pass."""
    from longrun.local.sqs.retention import check_attributes

    queues = [r for r in translated.template["Resources"].values() if r["Type"] == "AWS::SQS::Queue"]
    assert queues
    for queue in queues:
        check_attributes({k: v for k, v in queue.get("Properties", {}).items() if isinstance(v, int | str)})


def test_a_template_queue_out_of_range_stops_the_stack_as_aws_would(sqs_retention: Any) -> None:
    """The local CloudFormation engine's CreateQueue: refused as `local up` reports refusals (exit 2)."""
    from types import SimpleNamespace

    from longrun.local.refusals import AwsRefused
    from longrun.local.sqs.resources import _create_queue

    stack = SimpleNamespace(physical={"BuildQueue": "http://local/123456789012/stack-BuildQueue"})
    builder = SimpleNamespace(aws=lambda service: sqs_retention, stack=stack, redrives=[])
    with pytest.raises(AwsRefused) as refused:
        _create_queue(builder, "BuildQueue", {"MessageRetentionPeriod": 30, "VisibilityTimeout": 60})  # type: ignore[arg-type]
    assert "AWS would refuse BuildQueue" in str(refused.value)
    assert "MessageRetentionPeriod" in str(refused.value) and "API_CreateQueue.html" in str(refused.value)
    _create_queue(builder, "BuildQueue", {"MessageRetentionPeriod": 3600, "VisibilityTimeout": 60})  # type: ignore[arg-type]
    assert stack.physical["BuildQueue"].endswith("/stack-BuildQueue")
