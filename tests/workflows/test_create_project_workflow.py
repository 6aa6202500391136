"""``statemachines/create_project.asl.json`` run on the local engine (moto's Step Functions, real Lambdas).

These tests start executions directly, the way an operator or another system would, so they
can give the workflow input the API would never let through (a template that does not exist, a
name taken in a race) and watch the failure paths: every Catch must undo what was done and end in
``NotifyFailure`` with a ``FAILED`` ``job.finished``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Workflow:
    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.sfn = cloud.aws_client("stepfunctions")
        self.ddb = cloud.aws_client("dynamodb")
        self.s3 = cloud.aws_client("s3")
        tables = self.ddb.list_tables()["TableNames"]
        self.jobs_table = next(t for t in tables if "-JobsTable-" in t)
        self.events_table = next(t for t in tables if "-JobEventsTable-" in t)
        self.projects_table = next(t for t in tables if "-ProjectsTable-" in t)
        self.bucket = next(b["Name"] for b in self.s3.list_buckets()["Buckets"] if "projectsbucket" in b["Name"])
        self.machine = next(
            m["stateMachineArn"]
            for m in self.sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith("create-project")
        )

    def start(self, user: str, name: str, template: str = "web-app") -> dict[str, Any]:
        """Write the job as the API does, then start its execution."""
        job_id, project_id = uuid.uuid4().hex, "prj-" + uuid.uuid4().hex[:16]
        params = {"name": name, "template": template}
        created = _now()
        self.ddb.put_item(
            TableName=self.jobs_table,
            Item={
                "jobId": {"S": job_id},
                "userId": {"S": user},
                "projectId": {"S": project_id},
                "type": {"S": "create-project"},
                "status": {"S": "RUNNING"},
                "params": {"M": {k: {"S": v} for k, v in params.items()}},
                "createdAt": {"S": created},
                "updatedAt": {"S": created},
                "seq": {"N": "0"},
                "steps": {"M": {}},
            },
        )
        execution = self.sfn.start_execution(
            stateMachineArn=self.machine,
            name=f"wf-{job_id[:12]}",
            input=json.dumps(
                {"jobId": job_id, "userId": user, "projectId": project_id, "type": "create-project", "params": params}
            ),
        )
        return {"jobId": job_id, "projectId": project_id, "executionArn": execution["executionArn"], **params}

    def wait(self, execution_arn: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                return status
            time.sleep(0.1)
        raise TimeoutError(execution_arn)

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    def job(self, job_id: str) -> dict[str, Any]:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.ddb.get_item(TableName=self.jobs_table, Key={"jobId": {"S": job_id}}, ConsistentRead=True)["Item"]
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()}

    def events(self, job_id: str) -> list[dict[str, Any]]:
        items = self.ddb.query(
            TableName=self.events_table,
            KeyConditionExpression="jobId = :j",
            ExpressionAttributeValues={":j": {"S": job_id}},
        )["Items"]
        return [json.loads(i["body"]["S"]) for i in items]

    def name_reserved(self, user: str, name: str) -> bool:
        return "Item" in self.ddb.get_item(
            TableName=self.projects_table, Key={"pk": {"S": f"name#{user}#{name}"}}, ConsistentRead=True
        )

    def objects(self, project_id: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"projects/{project_id}/")
        return [o["Key"] for o in listed.get("Contents", [])]


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


def _name() -> str:
    return f"wf-{uuid.uuid4().hex[:10]}"


def test_success_path_visits_every_step_once(workflow):
    started = workflow.start("wf-user", _name())
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == [
        "ReserveName",
        "WriteScaffold",
        "InitRepository",
        "RecordProject",
        "NotifySuccess",
    ]
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED" and job["result"]["projectId"] == started["projectId"]
    events = workflow.events(started["jobId"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "job.finished" and events[-1]["status"] == "SUCCEEDED"


def test_failing_step_is_undone_and_reported_failed(workflow):
    """A template missing at run time fails WriteScaffold: undo, then NotifyFailure, then a FAILED execution."""
    started = workflow.start("wf-user", _name(), template="vanished")
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == [
        "ReserveName",
        "WriteScaffold",
        "UndoCreateProject",
        "NotifyFailure",
        "JobFailed",
    ]
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "ScaffoldNotFound" and "vanished" in job["error"]["message"]
    assert "stackTrace" not in json.dumps(job["error"]), "users never see stack traces"
    events = workflow.events(started["jobId"])
    finished = [e for e in events if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["status"] == "FAILED" and finished[0]["error"] == job["error"]
    assert ("write-scaffold", "FAILED") in [(e.get("step"), e.get("status")) for e in events]
    assert ("undo", "SUCCEEDED") in [(e.get("step"), e.get("status")) for e in events]
    assert not workflow.name_reserved("wf-user", started["name"]), "the undo released the name"
    assert workflow.objects(started["projectId"]) == []


def test_failure_after_the_scaffold_removes_it_and_leaves_foreign_files_alone(workflow, local_cloud):
    """InitRepository finds a workspace it did not make: the S3 prefix goes, that directory stays."""
    started = workflow.start("wf-user", _name())
    foreign = local_cloud.efs_root() / "projects" / started["projectId"]
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("not yours")
    assert workflow.wait(started["executionArn"]) == "FAILED"
    states = workflow.states_entered(started["executionArn"])
    assert states[-3:] == ["UndoCreateProject", "NotifyFailure", "JobFailed"] and "InitRepository" in states
    assert workflow.job(started["jobId"])["error"]["code"] == "WorkspaceExists"
    assert workflow.objects(started["projectId"]) == []
    assert (foreign / "keep.txt").read_text() == "not yours"
    assert not workflow.name_reserved("wf-user", started["name"])


def test_two_jobs_racing_for_one_name_one_wins_one_fails_name_taken(workflow):
    name = _name()
    first, second = workflow.start("racer", name), workflow.start("racer", name)
    statuses = {workflow.wait(first["executionArn"]), workflow.wait(second["executionArn"])}
    assert statuses == {"SUCCEEDED", "FAILED"}
    winner, loser = (first, second) if workflow.job(first["jobId"])["status"] == "SUCCEEDED" else (second, first)
    assert workflow.job(loser["jobId"])["error"]["code"] == "NameTaken"
    # The loser never reserved anything, so it undoes nothing: the winner's project is intact.
    assert "UndoCreateProject" not in workflow.states_entered(loser["executionArn"])
    assert workflow.name_reserved("racer", name)
    assert workflow.objects(winner["projectId"])
