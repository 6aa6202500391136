"""What the local engine does with a task that waits on a token, against what AWS does.

Builds ([4/6]) wait on ``sqs:sendMessage.waitForTaskToken``. On AWS, ``StopExecution`` aborts
such an execution at once and a missed heartbeat fails the task with ``States.HeartbeatTimeout``
(which ``States.Timeout`` also catches). moto's engine left a stopped execution ``RUNNING`` until
the task's own timeout and then called it ``FAILED``; ``longrun/local/stepfunctions/patches.py`` mends that,
and these tests fail without it.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def waiting_machine(local_cloud):
    sqs = local_cloud.aws_client("sqs")
    sfn = local_cloud.aws_client("stepfunctions")
    queue = sqs.create_queue(QueueName=f"token-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "HeartbeatSeconds": 2,
                "TimeoutSeconds": 120,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"token-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/token-test",
    )["stateMachineArn"]
    return sqs, sfn, queue, machine


def _token(sqs, queue: str) -> str:
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
    assert messages, "the task sent its message with the token"
    return json.loads(messages[0]["Body"])["token"]


def test_stop_aborts_a_waiting_execution_at_once(waiting_machine):
    sqs, sfn, queue, machine = waiting_machine
    execution = sfn.start_execution(stateMachineArn=machine, name="stopped", input="{}")["executionArn"]
    token = _token(sqs, queue)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.stop_execution(executionArn=execution, error="Cancelled", cause="by the user")
    deadline = time.monotonic() + 5
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    events = sfn.get_execution_history(executionArn=execution)["events"]
    assert events[-1]["type"] == "ExecutionAborted"
    with pytest.raises(ClientError):
        sfn.send_task_success(taskToken=token, output="{}")  # the worker learns the task is gone


def test_a_missed_heartbeat_fails_with_a_timeout_the_workflow_can_catch(waiting_machine):
    sqs, sfn, queue, machine = waiting_machine
    execution = sfn.start_execution(stateMachineArn=machine, name="silent", input="{}")["executionArn"]
    _token(sqs, queue)
    deadline = time.monotonic() + 15
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "FAILED" and described["error"] == "States.Timeout"


def test_a_heartbeat_right_after_the_message_is_accepted(waiting_machine):
    """The worker heartbeats as soon as it has the message; the token is live from the moment it is sent.

    The receive is already waiting when the execution starts, as a worker's long poll is, so the
    heartbeat lands in the moment between the engine's send and its watch of the task.
    """
    sqs, sfn, queue, machine = waiting_machine
    refused = 0
    for attempt in range(10):
        with ThreadPoolExecutor(max_workers=1) as pool:
            receiving = pool.submit(_token, sqs, queue)
            time.sleep(0.05)
            execution = sfn.start_execution(stateMachineArn=machine, name=f"early-{attempt}", input="{}")
            token = receiving.result()
        try:
            sfn.send_task_heartbeat(taskToken=token)
        except ClientError:
            refused += 1
        sfn.send_task_success(taskToken=token, output="{}")
        deadline = time.monotonic() + 5
        arn = execution["executionArn"]
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    assert refused == 0, f"{refused} of 10 heartbeats for a live token were refused"


def test_a_task_failure_keeps_its_cause(waiting_machine):
    """What a worker says of a failure (``cause``) is what the workflow's Catch and the operator see."""
    sqs, sfn, queue, machine = waiting_machine
    execution = sfn.start_execution(stateMachineArn=machine, name="failing", input="{}")["executionArn"]
    token = _token(sqs, queue)
    sfn.send_task_failure(taskToken=token, error="BuildFailed", cause='{"errorMessage": "exit 2"}')
    deadline = time.monotonic() + 5
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "FAILED" and described["error"] == "BuildFailed"
    failed = next(e for e in sfn.get_execution_history(executionArn=execution)["events"] if e["type"] == "TaskFailed")
    assert failed["taskFailedEventDetails"]["cause"] == '{"errorMessage": "exit 2"}'


def test_a_second_answer_to_an_answered_token_is_refused(local_cloud):
    """Two build workers that got one message (its visibility ran out) both claim it: only the first wins.

    AWS: TaskTimedOut, "the task associated with the token has already been closed"
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html). moto took the
    second answer as the first (mended in longrun/local/stepfunctions/patches.py, spent-tokens-answer-as-on-aws).
    """
    sqs = local_cloud.aws_client("sqs")
    sfn = local_cloud.aws_client("stepfunctions")
    queue = sqs.create_queue(QueueName=f"token-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = {
        "StartAt": "Claim",
        "States": {
            "Claim": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 120,
                "Next": "StillRunning",
            },
            "StillRunning": {"Type": "Wait", "Seconds": 20, "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name=f"token-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/token-test",
    )["stateMachineArn"]  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    token = _token(sqs, queue)
    sfn.send_task_success(taskToken=token, output='{"claim": "first"}')
    for answer in (
        lambda: sfn.send_task_success(taskToken=token, output='{"claim": "second"}'),
        lambda: sfn.send_task_heartbeat(taskToken=token),
        lambda: sfn.send_task_failure(taskToken=token, error="Late"),
    ):
        with pytest.raises(ClientError) as refused:
            answer()
        assert refused.value.response["Error"]["Code"] == "TaskTimedOut"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entered = [e["stateEnteredEventDetails"]["name"] for e in sfn.get_execution_history(executionArn=execution)[
            "events"] if "stateEnteredEventDetails" in e]  # fmt: skip
        if "StillRunning" in entered:
            break
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    succeeded = next(e for e in events if e["type"] == "TaskSucceeded")
    assert json.loads(succeeded["taskSucceededEventDetails"]["output"]) == {"claim": "first"}
    sfn.stop_execution(executionArn=execution)
