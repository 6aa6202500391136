"""One restart of Step Functions in a process of its own: run, dump, "restart", restore, settle, redrive.

Run by tests/local/stepfunctions/test_persistence.py as ``python -m tests.local.stepfunctions.restart_scenario``
(every patch of moto is installed, which the test process itself must not do); prints what it
observed as one JSON document. The restart is what ``longrun local up`` does: the backend is made
anew, the state machine created again under the same name, then the dumped data restored into it.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
from typing import Any

import boto3

ROLE = "arn:aws:iam::123456789012:role/restart-test"
REGION = "us-east-1"


def _definition(queue_url: str) -> dict[str, Any]:
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prepared", "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.hold", "BooleanEquals": True, "Next": "Hold"},
                    {"Variable": "$.fail", "BooleanEquals": True, "Next": "Boom"},
                    {"Variable": "$.map", "BooleanEquals": True, "Next": "Spread"},
                ],
                "Default": "Done",
            },
            "Hold": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "ResultPath": "$.answer",
                "Next": "Done",
            },
            "Spread": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                "ResultPath": "$.spread",
                "Next": "Done",
            },
            "Boom": {"Type": "Fail", "Error": "Boom", "Cause": "it was meant to fail"},
            "Done": {"Type": "Pass", "End": True},
        },
    }


def _client(service: str, port: int) -> Any:
    return boto3.client(
        service, endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def _ended(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def _token(sqs: Any, queue_url: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return json.loads(message["Body"])["token"]
    raise AssertionError("no task token arrived")


def _status_events(sqs: Any, queue_url: str, seconds: float = 5, until: str | None = None) -> list[dict[str, Any]]:
    """The status events that arrive within ``seconds``, or until one of status ``until`` came and 0.5 s more."""
    events, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until and any(e["status"] == until for e in events):
            deadline = min(deadline, time.monotonic() + 0.5)
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            events.append(json.loads(message["Body"])["detail"])
        time.sleep(0.05)
    return events


def _seen(sfn: Any, machine: str, arns: dict[str, str]) -> dict[str, Any]:
    """What the read APIs answer: Describe/ListExecution(s), GetExecutionHistory, ListMapRuns, DescribeMapRun."""
    described = {name: sfn.describe_execution(executionArn=arn) for name, arn in arns.items()}
    for answer in described.values():
        answer.pop("ResponseMetadata", None)
    map_runs = sfn.list_map_runs(executionArn=arns["mapped"])["mapRuns"]
    return {
        "describe": described,
        "list": sfn.list_executions(stateMachineArn=machine)["executions"],
        "history": {name: sfn.get_execution_history(executionArn=arn)["events"] for name, arn in arns.items()},
        "map_runs": map_runs,
        "map_run": {
            k: v for k, v in sfn.describe_map_run(mapRunArn=map_runs[0]["mapRunArn"]).items() if k != "ResponseMetadata"
        },
    }


def _error_code(call: Any) -> str | None:
    try:
        call()
    except Exception as e:  # botocore's ClientError
        return getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
    return None


def main() -> None:
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from longrun.local import patches
    from longrun.local.stepfunctions import persistence, settle

    patches.install()
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)  # the engine's SQS integration calls back here
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    sfn, sqs, events = _client("stepfunctions", port), _client("sqs", port), _client("events", port)
    tasks = sqs.create_queue(QueueName="tasks")["QueueUrl"]
    watched = sqs.create_queue(QueueName="status-events")["QueueUrl"]
    watched_arn = sqs.get_queue_attributes(QueueUrl=watched, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ends", EventPattern=json.dumps({"source": ["aws.states"]}))
    events.put_targets(Rule="ends", Targets=[{"Id": "q", "Arn": watched_arn}])

    definition = json.dumps(_definition(tasks))
    machine = sfn.create_state_machine(name="restart-test", definition=definition, roleArn=ROLE)["stateMachineArn"]

    def start(name: str, data: dict[str, Any]) -> str:
        return sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(data))["executionArn"]

    arns = {
        "done": start("done", {}),
        "failed": start("failed", {"fail": True}),
        "mapped": start("mapped", {"map": True, "items": [1, 2, 3]}),
    }
    for arn in arns.values():
        _ended(sfn, arn)
    arns["stopped"] = start("stopped", {"hold": True})
    _token(sqs, tasks)
    stopped_at = sfn.stop_execution(executionArn=arns["stopped"], error="Operator", cause="stopped by a test")
    _ended(sfn, arns["stopped"])
    arns["held"] = start("held", {"hold": True})
    old_token = _token(sqs, tasks)
    before = _seen(sfn, machine, arns)
    busy_before = persistence.busy()
    blob = pickle.dumps(persistence.dump())
    _status_events(sqs, watched, seconds=0.5)  # the first run's events

    # The restart: a fresh backend, the stack's state machine created again, the saved data restored.
    stepfunctions_parser_backends["123456789012"][REGION].reset()
    sfn.create_state_machine(name="restart-test", definition=definition, roleArn=ROLE)
    persistence.restore(pickle.loads(blob))
    persistence.restore(pickle.loads(blob))  # a second restore doubles nothing
    after = _seen(sfn, machine, arns)
    busy_after = persistence.busy()
    old_token_heartbeat = _error_code(lambda: sfn.send_task_heartbeat(taskToken=old_token))
    old_token_success = _error_code(lambda: sfn.send_task_success(taskToken=old_token, output="{}"))

    settled = settle.settle_lost_executions(sfn, [machine])
    settled_again = settle.settle_lost_executions(sfn, [machine])
    held = sfn.describe_execution(executionArn=arns["held"])
    held_history = sfn.get_execution_history(executionArn=arns["held"])["events"]
    status_events = _status_events(sqs, watched, until="ABORTED")
    running_after_settle = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]
    sfn.stop_execution(executionArn=arns["done"], error="Late", cause="a stop of an ended execution")
    done_after_stop = sfn.describe_execution(executionArn=arns["done"])["status"]

    sfn.redrive_execution(executionArn=arns["held"])
    busy_redriven = persistence.busy()
    sfn.send_task_success(taskToken=_token(sqs, tasks), output=json.dumps({"ok": True}))
    redriven = _ended(sfn, arns["held"])
    redriven_history = sfn.get_execution_history(executionArn=arns["held"])["events"]

    print(json.dumps({
        "before": before, "after": after, "busy": [busy_before, busy_after, busy_redriven],
        "stop_answer": {"stopDate": stopped_at["stopDate"]},
        "old_token_heartbeat": old_token_heartbeat, "old_token_success": old_token_success,
        "settled": settled, "settled_again": settled_again,
        "held": held, "held_history": held_history, "status_events": status_events,
        "running_after_settle": running_after_settle, "done_after_stop": done_after_stop,
        "redriven": redriven, "redriven_history": redriven_history, "arns": arns,
    }, default=str))  # fmt: skip
    server.stop()


if __name__ == "__main__":
    main()
