"""A standard queue with MessageGroupId is a fair queue: quiet tenants' messages first, as SQS serves them.

The rules are AWS's (sqs-fair-queues-detailed.html, emulated in longrun/local/sqs/fair.py); each test
drives them with moto's clock moved by hand, so "processing time" is exact and nothing sleeps. The
``sqs_moto`` tests show the gap: moto alone serves one tenant's backlog before anyone else's.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.local.sqs.conftest import START, Clock, install_only

LONG = 3600  # a visibility timeout no test outlives: a received message stays in flight


def _queue(sqs: Any, name: str = "builds") -> str:
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(LONG)})["QueueUrl"])


def _send(sqs: Any, url: str, tenant: str | None, count: int = 1, first: int = 1) -> None:
    for n in range(first, first + count):
        extra = {"MessageGroupId": tenant} if tenant is not None else {}
        sqs.send_message(QueueUrl=url, MessageBody=f"{tenant or 'none'}-{n}", **extra)


def _receive(sqs: Any, url: str, count: int = 1) -> list[dict[str, Any]]:
    reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=0,
                                VisibilityTimeout=LONG, MessageSystemAttributeNames=["All"])  # fmt: skip
    return list(reply.get("Messages", []))


def _consume(sqs: Any, url: str, clock: Clock, receives: int, *, delete: bool, seconds: float = 1.0) -> list[str]:
    """One consumer, one message at a time, each processed for ``seconds`` (then deleted, or kept in flight)."""
    bodies = []
    for _ in range(receives):
        (message,) = _receive(sqs, url)
        bodies.append(message["Body"])
        clock.advance(seconds)
        if delete:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.mark.parametrize("delete", [True, False], ids=["processed-and-deleted", "kept-in-flight"])
@pytest.mark.parametrize("other", ["B", None], ids=["other-user", "no-group-id"])
def test_one_message_behind_60_of_a_noisy_tenant_is_served_second(
    sqs_fair: Any, clock: Clock, delete: bool, other: str | None
) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A", 60)
    _send(sqs_fair, url, other)
    served = _consume(sqs_fair, url, clock, 5, delete=delete)
    # The first receive has no history: A's first build. From then on A holds all the processing
    # time (>10%): it is noisy, and the quiet tenant's message goes first.
    assert served == ["A-1", f"{other or 'none'}-1", "A-2", "A-3", "A-4"]


@pytest.mark.parametrize("delete", [True, False], ids=["processed-and-deleted", "kept-in-flight"])
def test_moto_alone_serves_the_other_tenant_last(sqs_moto: Any, clock: Clock, delete: bool) -> None:
    url = _queue(sqs_moto)
    _send(sqs_moto, url, "A", 60)
    _send(sqs_moto, url, "B")
    served = _consume(sqs_moto, url, clock, 61, delete=delete)
    assert served.index("B-1") == 60  # the gap longrun/local/sqs/fair.py fills


def test_the_group_id_is_kept_on_a_standard_queue(sqs_fair: Any) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "user-1")
    (message,) = _receive(sqs_fair, url)
    assert message["Attributes"]["MessageGroupId"] == "user-1"


def test_a_batch_serves_the_quiet_tenants_first_then_the_noisy_one(sqs_fair: Any, clock: Clock) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A", 60)
    _send(sqs_fair, url, "B")
    _send(sqs_fair, url, "C")
    assert _consume(sqs_fair, url, clock, 1, delete=False) == ["A-1"]
    batch = [m["Body"] for m in _receive(sqs_fair, url, 10)]
    assert batch == ["B-1", "C-1"] + [f"A-{n}" for n in range(2, 10)]


def test_the_concurrency_share_makes_a_tenant_noisy_at_30_in_flight(sqs_fair: Any, clock: Clock) -> None:
    """30 of its own in flight and over 10% of the queue's: noisy, though its processing time share is small."""
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "C")
    (c,) = _receive(sqs_fair, url)
    clock.advance(290)  # C's one long job: 290 s of the last 5 minutes' processing time
    sqs_fair.delete_message(QueueUrl=url, ReceiptHandle=c["ReceiptHandle"])
    _send(sqs_fair, url, "A", 40)
    _send(sqs_fair, url, "B")
    # A burst of receives 10 ms apart: A's processing time stays near 1% of the window's.
    served = _consume(sqs_fair, url, clock, 30, delete=False, seconds=0.01)
    assert served == [f"A-{n}" for n in range(1, 31)]  # up to 29 in flight A is quiet: queue order
    assert _consume(sqs_fair, url, clock, 2, delete=False, seconds=0.01) == ["B-1", "A-31"]


def test_noisy_tenants_are_served_fewest_in_flight_first(sqs_fair: Any, clock: Clock) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A", 10)
    _send(sqs_fair, url, "C", 10)
    # A's first takes all the processing time, so C (quiet) comes next; then both are noisy and the
    # one with fewer in flight goes first (a tie: queue order), which alternates them.
    served = _consume(sqs_fair, url, clock, 8, delete=False)
    assert served == ["A-1", "C-1", "A-2", "C-2", "A-3", "C-3", "A-4", "C-4"]


def test_a_tenant_that_sent_nothing_for_5_minutes_is_quiet_again(sqs_fair: Any, clock: Clock) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A", 60)
    _send(sqs_fair, url, "B")
    clock.advance(301)
    assert _consume(sqs_fair, url, clock, 2, delete=True, seconds=10) == ["A-1", "A-2"]  # not noisy: queue order
    _send(sqs_fair, url, "A", 1, first=61)  # A sends again: its processing share makes it noisy at once
    assert _consume(sqs_fair, url, clock, 2, delete=True) == ["B-1", "A-3"]


def test_a_message_visible_again_counts_its_receive_as_processing(sqs_fair: Any, clock: Clock) -> None:
    """A consumer that timed out held the message until its visibility ended: that time is its tenant's."""
    url = sqs_fair.create_queue(QueueName="short", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    _send(sqs_fair, url, "A", 3)
    _send(sqs_fair, url, "B")
    reply = sqs_fair.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0)
    assert reply["Messages"][0]["Body"] == "A-1"
    clock.advance(120)  # A-1 was in flight 30 s, then visible again (not received since)
    reply = sqs_fair.receive_message(QueueUrl=url, MaxNumberOfMessages=2, WaitTimeSeconds=0)
    assert [m["Body"] for m in reply["Messages"]] == ["B-1", "A-1"]


@pytest.mark.parametrize("fixture", ["sqs_moto", "sqs_fair"])
def test_fifo_queues_keep_moto_s_semantics(request: pytest.FixtureRequest, fixture: str) -> None:
    """A FIFO queue's group id orders: a group with a message in flight gives no other (the patch leaves it)."""
    sqs = request.getfixturevalue(fixture)
    url = sqs.create_queue(QueueName="builds.fifo", Attributes={"FifoQueue": "true",
                           "ContentBasedDeduplication": "true"})["QueueUrl"]  # fmt: skip
    for n in (1, 2):
        sqs.send_message(QueueUrl=url, MessageBody=f"A-{n}", MessageGroupId="A")
    sqs.send_message(QueueUrl=url, MessageBody="B-1", MessageGroupId="B")
    assert [m["Body"] for m in _receive(sqs, url)] == ["A-1"]
    assert [m["Body"] for m in _receive(sqs, url)] == ["B-1"]
    assert _receive(sqs, url) == []


def test_delete_keeps_moto_s_answers(sqs_fair: Any) -> None:
    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A")
    (message,) = _receive(sqs_fair, url)
    sqs_fair.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs_fair.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # twice: fine, as on SQS
    with pytest.raises(ClientError) as refused:
        sqs_fair.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert refused.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    attributes = sqs_fair.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_long_poll_waits_on_the_real_clock_and_returns_a_message_sent_meanwhile(sqs_fair: Any) -> None:
    url = _queue(sqs_fair)
    started = time.monotonic()
    assert sqs_fair.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    assert 0.9 <= time.monotonic() - started < 5  # moto's clock is frozen in these tests: not the one waited on
    threading.Timer(0.3, lambda: _send(sqs_fair, url, "A")).start()
    reply = sqs_fair.receive_message(QueueUrl=url, WaitTimeSeconds=5)
    assert [m["Body"] for m in reply["Messages"]] == ["A-1"]


def test_step_functions_send_message_passes_the_group_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build machine's ``sqs:sendMessage.waitForTaskToken`` task sets MessageGroupId: moto's engine sends it."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    install_only(monkeypatch, "fair-queues")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sqs, sfn = boto3.client("sqs", region_name="us-east-1"), boto3.client("stepfunctions", region_name="us-east-1")
        url = _queue(sqs)
        definition = {
            "StartAt": "Queue",
            "States": {
                "Queue": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {
                        "QueueUrl": url,
                        "MessageGroupId.$": "$.userId",
                        "MessageBody": {"taskToken.$": "$$.Task.Token", "userId.$": "$.userId"},
                    },
                    "End": True,
                }
            },
        }
        machine = sfn.create_state_machine(name="m", definition=json.dumps(definition),
                                           roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]  # fmt: skip
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"userId": "user-7"}))
        deadline = time.monotonic() + 20
        messages: list[dict[str, Any]] = []
        while not messages and time.monotonic() < deadline:
            messages = _receive(sqs, url)
            time.sleep(0.05)
        assert messages, "the task's message never reached the queue"
        assert messages[0]["Attributes"]["MessageGroupId"] == "user-7"
        body = json.loads(messages[0]["Body"])
        sfn.send_task_success(taskToken=body["taskToken"], output="{}")
        while sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_the_fair_queue_history_copies_and_pickles_for_the_snapshots(sqs_fair: Any, clock: Clock) -> None:
    """longrun/local/sqs/persistence.py saves it with the messages: a restart does not forget who was noisy."""
    import copy
    import pickle

    from moto.sqs.models import sqs_backends

    from longrun.local.sqs.fair import state

    url = _queue(sqs_fair)
    _send(sqs_fair, url, "A", 3)
    _consume(sqs_fair, url, clock, 2, delete=True)
    saved = pickle.loads(pickle.dumps(copy.deepcopy(state(sqs_backends["123456789012"]["us-east-1"].queues["builds"]))))
    assert [(who, end - start) for end, who, start in saved.finished] == [(("group", "A"), 1000.0)] * 2
    assert saved.last_sent == {("group", "A"): 1000 * START}
