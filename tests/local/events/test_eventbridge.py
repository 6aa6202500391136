"""EventBridge in the local cloud as on AWS: rules deliver to state machines and Lambda functions, schedules fire.

moto alone fails ``PutEvents`` on a rule whose target is a state machine or a function, never
fires a ``rate()``/``cron()`` rule and delivers for disabled rules; ``longrun local up`` must not.
The schedule test is also the proof of the job sweeper: an execution that ends while the
execution-status rule is disabled (its event lost to longrun) leaves its job ``RUNNING`` until a
scheduled sweep, invoked by EventBridge directly, closes it with one ``job.finished``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.e2e.helpers import create_project, http, stack_outputs, wait_for_status

ROLE = "arn:aws:iam::123456789012:role/test-target"


def _wait(predicate: Any, timeout: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s")


def _rule(cloud: Any, bus: str) -> tuple[Any, str]:
    return cloud.aws_client("events"), f"test-{uuid.uuid4().hex[:8]}"


def test_a_rule_starts_its_state_machine_target_with_the_transformed_event(local_cloud):
    sfn = local_cloud.aws_client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"target-{uuid.uuid4().hex[:8]}", roleArn=ROLE,
        definition=json.dumps({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]  # fmt: skip
    bus = stack_outputs(local_cloud)["EventBusName"]
    events, rule = _rule(local_cloud, bus)
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["com.example.orders"]}))
    transformer = {"InputPathsMap": {"order": "$.detail.order"}, "InputTemplate": '{"order": "<order>", "via": "rule"}'}
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "m", "Arn": machine, "RoleArn": ROLE,
                                                              "InputTransformer": transformer}])  # fmt: skip
    answer = events.put_events(Entries=[{"Source": "com.example.orders", "DetailType": "Order Placed",
                                         "Detail": json.dumps({"order": "o-42"}), "EventBusName": bus}])  # fmt: skip
    assert answer["FailedEntryCount"] == 0, "moto alone answers a state-machine target with a 500"
    [execution] = _wait(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], 15)
    output = _wait(lambda: sfn.describe_execution(executionArn=execution["executionArn"]).get("output"), 15)
    assert json.loads(output) == {"order": "o-42", "via": "rule"}
    # Another source matches nothing: one execution, still.
    events.put_events(Entries=[{"Source": "com.example.other", "DetailType": "Order Placed",
                                "Detail": "{}", "EventBusName": bus}])  # fmt: skip
    time.sleep(1)
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1


def test_a_disabled_rule_delivers_nothing(local_cloud):
    sqs = local_cloud.aws_client("sqs")
    queue = sqs.create_queue(QueueName=f"disabled-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events, rule = _rule(local_cloud, "default")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["com.example.quiet"]}), State="DISABLED")
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": "com.example.quiet", "DetailType": "x", "Detail": "{}"}])
    time.sleep(1)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    events.enable_rule(Name=rule)
    events.put_events(Entries=[{"Source": "com.example.quiet", "DetailType": "x", "Detail": "{}"}])
    assert _wait(lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 10)


def _execution_status_rule(events: Any) -> str:
    names = [r["Name"] for r in events.list_rules()["Rules"] if "ExecutionStatusRule" in r["Name"]]
    assert len(names) == 1, names
    return names[0]


def _sweeper_arn(events: Any) -> str:
    """The sweeper as the template's own schedule rule targets it."""
    [rule] = [r for r in events.list_rules()["Rules"] if "JobSweeper" in r["Name"]]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    return target["Arn"]


def test_a_schedule_invokes_the_sweeper_which_closes_a_job_whose_end_was_never_told(local_cloud):
    user = "sweeper-sam"
    project = create_project(local_cloud, user)
    events, sfn = local_cloud.aws_client("events"), local_cloud.aws_client("stepfunctions")
    status_rule = _execution_status_rule(events)
    events.disable_rule(Name=status_rule)  # the incident: Step Functions' events no longer reach longrun
    try:
        started = http(local_cloud, "POST", "/jobs", user, json={"type": "build", "projectId": project,
                       "params": {"command": "sleep 30"}})  # fmt: skip
        assert started.status_code == 202, started.text
        job = started.json()
        _wait(lambda: http(local_cloud, "GET", f"/jobs/{job['jobId']}", user).json()["steps"], 20)
        sfn.stop_execution(executionArn=job["executionArn"], error="Operator", cause="stopped from the console")
        time.sleep(2)
        assert http(local_cloud, "GET", f"/jobs/{job['jobId']}", user).json()["status"] == "RUNNING", "event lost"
    finally:
        events.enable_rule(Name=status_rule)
    rule = f"sweep-now-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule=rule, Targets=[{"Id": "sweeper", "Arn": _sweeper_arn(events)}])
    try:
        closed = wait_for_status(local_cloud, job["jobId"], user, timeout=90)
    finally:
        events.remove_targets(Rule=rule, Ids=["sweeper"])
        events.delete_rule(Name=rule)
    # A Stop that named its reason fails the job with it, as the trigger would have (docs/operations.md).
    assert closed["status"] == "FAILED" and closed["error"]["code"] == "Operator", closed
    items = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events", user).json()["items"]
    assert [e["type"] for e in items].count("job.finished") == 1
