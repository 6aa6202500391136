"""Drive state machines on the local engine directly, the way an operator or another system would.

Starting an execution without the API lets a test give the workflow input the API would never let
through (a template that vanished, a name taken in a race, a git URL that slipped past the edge) and
watch its failure paths in the execution history.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer


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

    def machine(self, job_type: str) -> str:
        return next(
            m["stateMachineArn"]
            for m in self.sfn.list_state_machines()["stateMachines"]
            if m["name"].endswith(job_type)
        )

    def start(self, user: str, name: str, template: str = "web-app") -> dict[str, Any]:
        """A create-project job, written as the API does, then its execution."""
        project_id = "prj-" + uuid.uuid4().hex[:16]
        return self.start_job("create-project", user, {"name": name, "template": template}, project_id)

    def start_job(
        self,
        job_type: str,
        user: str,
        params: dict[str, Any],
        project_id: str,
        lock: bool = False,
        extra: dict[str, Any] | None = None,
        machine: str | None = None,
    ) -> dict[str, Any]:
        """Write the job as the API does (and take the project's git lock if ``lock``), then start it.

        ``extra`` goes into the execution's input beside the job (e.g. a sync's ``tuning``);
        ``machine`` runs it on another state machine than the stack's own for ``job_type``.
        """
        job_id = uuid.uuid4().hex
        created = _now()
        machine = machine or self.machine(job_type)
        name = f"wf-{job_id[:12]}"
        self.ddb.put_item(
            TableName=self.jobs_table,
            Item={
                "jobId": {"S": job_id},
                "executionArn": {"S": machine.replace(":stateMachine:", ":execution:") + f":{name}"},
                "userId": {"S": user},
                "projectId": {"S": project_id},
                "type": {"S": job_type},
                "status": {"S": "RUNNING"},
                "params": {"M": {k: _attribute(v) for k, v in params.items()}},
                "createdAt": {"S": created},
                "updatedAt": {"S": created},
                "seq": {"N": "0"},
                "steps": {"M": {}},
            },
        )
        if lock:
            self.ddb.put_item(
                TableName=self.projects_table,
                Item={
                    "pk": {"S": f"lock#{project_id}"},
                    "jobId": {"S": job_id},
                    "type": {"S": job_type},
                    "takenAt": {"S": created},
                    "expiresAt": {"N": str(int(time.time()) + 1800)},
                },
            )
        execution = self.sfn.start_execution(
            stateMachineArn=machine,
            name=name,
            input=json.dumps(
                {
                    "jobId": job_id,
                    "userId": user,
                    "projectId": project_id,
                    "type": job_type,
                    "params": params,
                    **(extra or {}),
                }
            ),
        )
        return {"jobId": job_id, "projectId": project_id, "executionArn": execution["executionArn"], **params}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]

    def lock_holder(self, project_id: str) -> str | None:
        item = self.ddb.get_item(
            TableName=self.projects_table, Key={"pk": {"S": f"lock#{project_id}"}}, ConsistentRead=True
        ).get("Item")
        return item["jobId"]["S"] if item else None

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


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}
