"""``Job Status Change`` events reach a rule of another system on the stack's bus: one per change of status."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.e2e.helpers import http, start_create_project, wait_for_status


def test_a_rule_on_the_bus_receives_each_status_change_of_a_job(local_cloud):
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in local_cloud.aws_client("cloudformation").describe_stacks(StackName="longrun")["Stacks"][0]["Outputs"]
    }
    bus = outputs["EventBusName"]
    events, sqs = local_cloud.aws_client("events"), local_cloud.aws_client("sqs")
    queue = sqs.create_queue(QueueName=f"follower-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"follow-jobs-{uuid.uuid4().hex[:8]}"
    pattern = {"source": ["longrun.jobs"], "detail-type": ["Job Status Change"]}
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "follower", "Arn": queue_arn}])

    job = start_create_project(local_cloud, "vera")
    assert wait_for_status(local_cloud, job["jobId"], "vera")["status"] == "SUCCEEDED"
    cancelled = start_create_project(local_cloud, "vera")
    assert http(local_cloud, "DELETE", f"/jobs/{cancelled['jobId']}", "vera").status_code == 202

    received: list[dict[str, Any]] = []

    def of(followed: dict[str, Any]) -> list[dict[str, Any]]:
        return [e["detail"] for e in received if e["detail"]["jobId"] == followed["jobId"]]

    def take(until: float, enough: Any) -> None:
        while time.monotonic() < until and not enough():
            reply = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            received.extend(json.loads(m["Body"]) for m in reply.get("Messages", []))

    take(time.monotonic() + 30, lambda: len(of(job)) >= 2 and len(of(cancelled)) >= 2)
    take(time.monotonic() + 3, lambda: False)  # nothing more follows: one event per change, not per writer
    for followed, final in ((job, "SUCCEEDED"), (cancelled, "CANCELLED")):
        assert [d["status"] for d in of(followed)] == ["RUNNING", final], received
    sample = next(e for e in received if e["detail"]["jobId"] == job["jobId"])
    assert sample["source"] == "longrun.jobs" and sample["detail-type"] == "Job Status Change"
    assert set(sample["detail"]) == {"jobId", "projectId", "userId", "type", "status", "at"}
    assert sample["detail"]["userId"] == "vera" and sample["detail"]["type"] == "create-project"
