"""``RedriveExecution`` in the local cloud, against AWS's "Restarting state machine executions with redrive".

moto's engine has no ``RedriveExecution``; ``longrun/local/stepfunctions/redrive.py`` adds it, and
``POST /jobs/{id}/retry`` relies on it. Each test builds state machines of its own that fail at a
chosen state until the test changes something outside them (a DynamoDB table that does not exist
yet, a task token nobody answers), then redrives them on the real local AWS endpoint.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/redrive-test"


def _machine(sfn: Any, definition: dict[str, Any]) -> str:
    return sfn.create_state_machine(
        name=f"redrive-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]


def _ended(sfn: Any, execution: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    described = sfn.describe_execution(executionArn=execution)
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
        described = sfn.describe_execution(executionArn=execution)
    return described


def _history(sfn: Any, execution: str) -> list[dict[str, Any]]:
    return sfn.get_execution_history(executionArn=execution)["events"]


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _table(dynamodb: Any, name: str, items: list[dict[str, Any]]) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        dynamodb.put_item(TableName=name, Item=item)


def _reads_a_table(table: str) -> dict[str, Any]:
    """Two Pass states, then a getItem that fails (``DynamoDB.ResourceNotFoundException``) until the table exists."""
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"id": "answer"}, "ResultPath": "$.key", "Next": "Shape"},
            "Shape": {"Type": "Pass", "Parameters": {"key.$": "$.key", "asked.$": "$.asked"}, "Next": "Read"},
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": table, "Key": {"id": {"S.$": "$.key.id"}}},
                "ResultSelector": {"value.$": "$.Item.value.S"},
                "ResultPath": "$.read",
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }


@pytest.fixture
def aws(local_cloud) -> tuple[Any, Any, Any]:
    return local_cloud.aws_client("stepfunctions"), local_cloud.aws_client("dynamodb"), local_cloud.aws_client("sqs")


def test_a_failed_execution_resumes_at_the_failed_task_with_its_input(aws):
    sfn, dynamodb, _ = aws
    table = f"redrive-{uuid.uuid4().hex[:8]}"
    machine = _machine(sfn, _reads_a_table(table))
    execution = sfn.start_execution(stateMachineArn=machine, name="first", input='{"asked": "life"}')["executionArn"]
    failed = _ended(sfn, execution)
    assert failed["status"] == "FAILED" and failed["error"] == "DynamoDB.ResourceNotFoundException"
    assert failed["redriveCount"] == 0 and failed["redriveStatus"] == "REDRIVABLE"
    assert "redriveStatusReason" not in failed and "redriveDate" not in failed
    first_attempt = _history(sfn, execution)

    _table(dynamodb, table, [{"id": {"S": "answer"}, "value": {"S": "42"}}])
    redrive_date = sfn.redrive_execution(executionArn=execution)["redriveDate"]

    done = _ended(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == {"key": {"id": "answer"}, "asked": "life", "read": {"value": "42"}}
    assert done["executionArn"] == execution and done["startDate"] == failed["startDate"]
    assert done["redriveCount"] == 1 and done["redriveDate"] == redrive_date
    assert done["redriveStatus"] == "NOT_REDRIVABLE"
    assert done["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven."
    assert "error" not in done and "cause" not in done

    events = _history(sfn, execution)
    assert events[: len(first_attempt)] == first_attempt, "the first attempt's events are kept as they were"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert first_attempt[-1]["type"] == "ExecutionFailed"
    redriven = events[len(first_attempt)]
    assert redriven["type"] == "ExecutionRedriven" and redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert [e["type"] for e in events].count("ExecutionStarted") == 1
    # The Pass states that succeeded are not run again; Read runs again with the input it had.
    assert _entered(events) == ["Prepare", "Shape", "Read", "Read", "Done"]
    reads = [e for e in events if e["type"] == "TaskStateEntered"]
    assert reads[0]["stateEnteredEventDetails"]["input"] == reads[1]["stateEnteredEventDetails"]["input"]
    assert events[len(first_attempt) + 1]["type"] == "TaskStateEntered"
    assert events[-1]["type"] == "ExecutionSucceeded"

    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=execution)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_running_succeeded_and_unknown_executions_are_not_redriven(aws):
    sfn, _, _ = aws
    machine = _machine(sfn, {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}})
    running = sfn.start_execution(stateMachineArn=machine, name="running")["executionArn"]
    described = sfn.describe_execution(executionArn=running)
    assert described["status"] == "RUNNING" and described["redriveStatus"] == "NOT_REDRIVABLE"
    assert described["redriveStatusReason"] == "Execution is RUNNING and cannot be redriven."
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=running)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sfn.stop_execution(executionArn=running)

    quick = _machine(sfn, {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    succeeded = sfn.start_execution(stateMachineArn=quick, name="succeeded")["executionArn"]
    assert _ended(sfn, succeeded)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=succeeded)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"

    with pytest.raises(ClientError) as unknown:
        sfn.redrive_execution(executionArn=succeeded.rsplit(":", 1)[0] + ":never-started")
    assert unknown.value.response["Error"]["Code"] == "ExecutionDoesNotExist"


def test_a_timed_out_execution_resumes_at_its_wait_with_the_timeout_counted_again(aws):
    """The state machine's TimeoutSeconds starts again at the redrive: the Wait runs its second out, then times out."""
    sfn, _, _ = aws
    machine = _machine(
        sfn,
        {
            "StartAt": "Before",
            "TimeoutSeconds": 1,
            "States": {
                "Before": {"Type": "Pass", "Next": "Wait"},
                "Wait": {"Type": "Wait", "Seconds": 3, "End": True},
            },
        },
    )
    execution = sfn.start_execution(stateMachineArn=machine, name="slow")["executionArn"]
    timed_out = _ended(sfn, execution)
    assert timed_out["status"] == "TIMED_OUT" and timed_out["redriveStatus"] == "REDRIVABLE"
    time.sleep(1.5)  # long past the execution's timeout, counted from its start

    redrive_date = sfn.redrive_execution(executionArn=execution)["redriveDate"]
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    again = _ended(sfn, execution)
    assert again["status"] == "TIMED_OUT" and again["redriveCount"] == 1
    assert (again["stopDate"] - redrive_date).total_seconds() >= 0.9, "the timeout counts from the redrive"
    assert again["redriveStatus"] == "REDRIVABLE"

    events = _history(sfn, execution)
    assert _entered(events) == ["Before", "Wait", "Wait"]
    types = [e["type"] for e in events]
    assert types.index("ExecutionTimedOut") < types.index("ExecutionRedriven")
    assert types[-1] == "ExecutionTimedOut" and types.count("ExecutionTimedOut") == 2


def test_an_aborted_execution_redriven_waits_on_a_new_token_and_can_be_stopped_and_redriven_again(aws):
    """Task tokens, heartbeats and StopExecution work on a redriven execution; each redrive counts."""
    sfn, _, sqs = aws
    queue = sqs.create_queue(QueueName=f"redrive-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    machine = _machine(
        sfn,
        {
            "StartAt": "Before",
            "States": {
                "Before": {"Type": "Pass", "Result": "kept", "ResultPath": "$.before", "Next": "Build"},
                "Build": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {
                        "QueueUrl": queue,
                        "MessageBody": {
                            "token.$": "$$.Task.Token",
                            "attempt.$": "$$.Execution.RedriveCount",
                            "before.$": "$.before",
                        },
                    },
                    "HeartbeatSeconds": 30,
                    "End": True,
                },
            },
        },
    )

    def message() -> dict[str, Any]:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
        assert messages, "the task sent its message with the token"
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
        return json.loads(messages[0]["Body"])

    execution = sfn.start_execution(stateMachineArn=machine, name="stopped", input="{}")["executionArn"]
    first = message()
    assert first["attempt"] == 0
    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="by the test")
    assert _ended(sfn, execution)["status"] == "ABORTED"

    sfn.redrive_execution(executionArn=execution)
    second = message()
    assert second["attempt"] == 1 and second["before"] == "kept" and second["token"] != first["token"]
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.send_task_heartbeat(taskToken=second["token"])
    with pytest.raises(ClientError):
        sfn.send_task_heartbeat(taskToken=first["token"])  # the first attempt's token is spent
    sfn.stop_execution(executionArn=execution)
    stopped_again = _ended(sfn, execution)
    assert stopped_again["status"] == "ABORTED" and stopped_again["redriveCount"] == 1

    sfn.redrive_execution(executionArn=execution)
    third = message()
    assert third["attempt"] == 2
    sfn.send_task_success(taskToken=third["token"], output='{"built": true}')
    done = _ended(sfn, execution)
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"built": True}
    assert done["redriveCount"] == 2

    events = _history(sfn, execution)
    assert _entered(events) == ["Before", "Build", "Build", "Build"]
    redriven = [e["executionRedrivenEventDetails"]["redriveCount"] for e in events if e["type"] == "ExecutionRedriven"]
    assert redriven == [1, 2]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


def test_a_failure_inside_a_map_reruns_the_whole_map(aws):
    """AWS redrives only the failed iterations; the local cloud reruns the top-level Map with its input (documented)."""
    sfn, dynamodb, _ = aws
    table = f"redrive-{uuid.uuid4().hex[:8]}"
    machine = _machine(
        sfn,
        {
            "StartAt": "Items",
            "States": {
                "Items": {"Type": "Pass", "Result": ["a", "b"], "ResultPath": "$.ids", "Next": "EachItem"},
                "EachItem": {
                    "Type": "Map",
                    "ItemsPath": "$.ids",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "INLINE"},
                        # Not "Items" again: state names are unique across the machine, processors included,
                        # and Step Functions (and the local cloud) refuse a definition that reuses one.
                        "StartAt": "GetItem",
                        "States": {
                            "GetItem": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::dynamodb:getItem",
                                "Parameters": {"TableName": table, "Key": {"id": {"S.$": "$"}}},
                                "OutputPath": "$.Item.value.S",
                                "End": True,
                            }
                        },
                    },
                    "ResultPath": "$.values",
                    "End": True,
                },
            },
        },
    )
    execution = sfn.start_execution(stateMachineArn=machine, name="map", input="{}")["executionArn"]
    assert _ended(sfn, execution)["status"] == "FAILED"

    _table(dynamodb, table, [{"id": {"S": key}, "value": {"S": key.upper()}} for key in ("a", "b")])
    sfn.redrive_execution(executionArn=execution)
    done = _ended(sfn, execution)
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"])["values"] == ["A", "B"]
    events = _history(sfn, execution)
    assert [e["type"] for e in events].count("PassStateEntered") == 1
    assert _entered(events).count("EachItem") == 2
    redriven = next(i for i, e in enumerate(events) if e["type"] == "ExecutionRedriven")
    rerun = events[redriven + 1]
    assert rerun["type"] == "MapStateEntered" and rerun["stateEnteredEventDetails"]["name"] == "EachItem"
    first = next(e for e in events if e["type"] == "MapStateEntered")
    assert rerun["stateEnteredEventDetails"]["input"] == first["stateEnteredEventDetails"]["input"]


def test_concurrent_redrives_redrive_once_and_a_repeated_client_token_gets_the_same_answer(aws):
    sfn, _, sqs = aws
    queue = sqs.create_queue(QueueName=f"redrive-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": True,
    }
    machine = _machine(sfn, {"StartAt": "Wait", "States": {"Wait": task}})
    execution = sfn.start_execution(stateMachineArn=machine, name="raced")["executionArn"]
    sfn.stop_execution(executionArn=execution)
    assert _ended(sfn, execution)["status"] == "ABORTED"

    def redrive(token: str) -> str:
        try:
            sfn.redrive_execution(executionArn=execution, clientToken=token)
            return "redriven"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(redrive, [f"token-{i}" for i in range(6)]))
    assert sorted(answers) == ["ExecutionNotRedrivable"] * 5 + ["redriven"], answers
    winner = f"token-{answers.index('redriven')}"
    first = sfn.describe_execution(executionArn=execution)
    assert first["status"] == "RUNNING" and first["redriveCount"] == 1
    again = sfn.redrive_execution(executionArn=execution, clientToken=winner)
    assert again["redriveDate"] == first["redriveDate"]
    assert sfn.describe_execution(executionArn=execution)["redriveCount"] == 1, "the same request, not a second redrive"
    sfn.stop_execution(executionArn=execution)
    assert _ended(sfn, execution)["status"] == "ABORTED"


def test_status_change_events_of_a_redriven_execution_carry_its_redrive_count(local_cloud, aws):
    sfn, dynamodb, sqs = aws
    events = local_cloud.aws_client("events")
    table = f"redrive-{uuid.uuid4().hex[:8]}"
    machine = _machine(sfn, _reads_a_table(table))
    queue = sqs.create_queue(QueueName=f"redrive-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"redrive-{uuid.uuid4().hex[:8]}"
    pattern = {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [machine]},
    }
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "test", "Arn": queue_arn}])
    try:
        execution = sfn.start_execution(stateMachineArn=machine, name="told", input='{"asked": "x"}')["executionArn"]
        assert _ended(sfn, execution)["status"] == "FAILED"
        _table(dynamodb, table, [{"id": {"S": "answer"}, "value": {"S": "told"}}])
        sfn.redrive_execution(executionArn=execution)
        assert _ended(sfn, execution)["status"] == "SUCCEEDED"

        received: list[dict[str, Any]] = []
        _receive(sqs, queue, received, lambda: len(received) >= 4)
        _receive(sqs, queue, received, lambda: False, seconds=2)  # and nothing more
    finally:
        events.remove_targets(Rule=rule, Ids=["test"])
        events.delete_rule(Name=rule)
    details = [e["detail"] for e in received]
    assert [(d["status"], d["redriveCount"]) for d in details] == [
        ("RUNNING", 0),
        ("FAILED", 0),
        ("RUNNING", 1),
        ("SUCCEEDED", 1),
    ], details
    assert all(d["executionArn"] == execution for d in details)
    assert details[2]["stopDate"] is None and details[2]["error"] is None
    assert details[2]["redriveDate"] is not None and details[2]["startDate"] == details[0]["startDate"]
    assert details[1]["redriveStatus"] == "REDRIVABLE" and details[3]["redriveStatus"] == "NOT_REDRIVABLE"
    assert json.loads(details[3]["output"])["read"] == {"value": "told"}


def _receive(sqs: Any, queue: str, into: list[dict[str, Any]], enough: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not enough():
        reply = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            into.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
