"""``statemachines/build.asl.json`` on the local engine, with the test as the build worker.

The local cloud's own workers take every message of the stack's build queue, so the executions here
run on a machine of the test's own: the real ASL file with its substitutions filled in, the stack's
Prepare and Notify functions, and a queue nobody else reads. The test receives the build message and
claims it as a worker would (``SendTaskSuccess`` of the Queue state's token, then the Run state's
token taken from the projects table), answers it (success, ``BuildFailed``, ``BuildTimedOut``,
silence, or a stop), and checks what the user sees: the job's final status, result and error.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from jsonschema import Draft202012Validator
from workers.build.worker import TOKEN_GONE

from tests.workflows.engine import Workflow

REPO = Path(__file__).resolve().parents[2]
USER = "wf-build"
HEARTBEAT_SECONDS = 10  # `longrun local up --build-heartbeat-timeout`'s default, which Prepare passes on
QUEUE_SECONDS = 3  # the Queue state's limit on the short-queue machine
FAILED_CAUSE = {"errorMessage": "the build command exited with code 2", "details": [{"exitCode": 2}]}


class BuildWorkflow(Workflow):
    """The engine helper, with ``build`` jobs started on the test's machine and read from its queue."""

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.sqs = cloud.aws_client("sqs")
        stack_machine = super().machine("-build")
        described = self.sfn.describe_state_machine(stateMachineArn=stack_machine)
        states = json.loads(described["definition"])["States"]
        self.queue_url = self.sqs.create_queue(QueueName=f"wf-build-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        definition = (REPO / "statemachines" / "build.asl.json").read_text()
        for name, value in {
            "BuildPrepareFunctionArn": states["Prepare"]["Resource"],
            "NotifyFunctionArn": states["NotifySuccess"]["Resource"],
            "BuildQueueUrl": self.queue_url,
            "ProjectsTableName": self.projects_table,
        }.items():
            definition = definition.replace("${" + name + "}", value)
        assert "${" not in definition, "every substitution of the template is filled in"
        self.role = described["roleArn"]
        self.groups: dict[str, str | None] = {}  # jobId -> the MessageGroupId its message came with
        self.build_machine = self.sfn.create_state_machine(
            name=f"wf-build-asl-{uuid.uuid4().hex[:10]}", definition=definition, roleArn=self.role
        )["stateMachineArn"]
        # The same machine with the Queue state's limit at QUEUE_SECONDS instead of the stack's
        # BuildQueueTimeoutSeconds (an hour; SQS's retention minimum keeps even a test stack at 60 s).
        path = '"TimeoutSecondsPath": "$.build.queueTimeoutSeconds"'
        assert definition.count(path) == 1
        self.short_queue_machine = self.sfn.create_state_machine(
            name=f"wf-build-asl-q-{uuid.uuid4().hex[:10]}", roleArn=self.role,
            definition=definition.replace(path, f'"TimeoutSeconds": {QUEUE_SECONDS}'),
        )["stateMachineArn"]  # fmt: skip

    def machine(self, job_type: str) -> str:
        return self.build_machine if job_type == "build" else super().machine(job_type)

    def take(self, job_id: str, timeout: float = 20) -> dict[str, Any]:
        """The next build message of ``job_id``, as a worker receives it (deleted: it is being handled).

        Messages of other jobs are strays of an earlier test that failed midway: they are deleted.
        """
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=max(1, min(5, int(left))),
                VisibilityTimeout=120, AttributeNames=["All"],
            )  # fmt: skip
            for message in reply.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if body.get("jobId") == job_id:
                    self.groups[job_id] = message.get("Attributes", {}).get("MessageGroupId")
                    return body
        raise TimeoutError(f"no build message for job {job_id} within {timeout} s")

    def claim(self, body: dict[str, Any], worker: str = "wf-worker") -> str:
        """Claim a taken build as a worker does; the claim id."""
        claim = uuid.uuid4().hex
        self.sfn.send_task_success(taskToken=body["taskToken"], output=json.dumps({"worker": worker, "claim": claim}))
        return claim

    def run_token(self, job_id: str, claim: str, timeout: float = 20) -> str:
        """The Run state's token for this claim, read and removed as the worker does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            item = self.ddb.delete_item(
                TableName=self.projects_table, Key={"pk": {"S": f"buildrun#{job_id}#{claim}"}}, ReturnValues="ALL_OLD"
            ).get("Attributes")
            if item:
                return item["taskToken"]["S"]
            time.sleep(0.1)
        raise TimeoutError(f"no run token for job {job_id} within {timeout} s")

    def take_run(self, job_id: str, timeout: float = 20) -> dict[str, Any]:
        """Take, claim, get the Run token: the message, ``taskToken`` now the Run token (``queueToken`` the first)."""
        body = self.take(job_id, timeout)
        run = self.run_token(job_id, self.claim(body))
        return {**body, "queueToken": body["taskToken"], "taskToken": run}

    def nothing_queued_for(self, job_id: str) -> bool:
        reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return not [m for m in reply.get("Messages", []) if json.loads(m["Body"]).get("jobId") == job_id]

    def close(self) -> None:
        self.sfn.delete_state_machine(stateMachineArn=self.build_machine)
        self.sfn.delete_state_machine(stateMachineArn=self.short_queue_machine)
        self.sqs.delete_queue(QueueUrl=self.queue_url)


@pytest.fixture(scope="module")
def builds(local_cloud: Any) -> Iterator[BuildWorkflow]:
    workflow = BuildWorkflow(local_cloud)
    yield workflow
    workflow.close()


@pytest.fixture(scope="module")
def project(builds: BuildWorkflow) -> str:
    """A web-app project: its ``longrun.json`` says ``sh build.sh`` and ``dist/**``."""
    started = builds.start(USER, f"wf-build-{uuid.uuid4().hex[:8]}")
    assert builds.wait(started["executionArn"]) == "SUCCEEDED"
    return started["projectId"]


def token_error(builds: BuildWorkflow, token: str) -> str | None:
    """What Step Functions answers a worker's heartbeat with this token: None if accepted, else the error code."""
    try:
        builds.sfn.send_task_heartbeat(taskToken=token)
        return None
    except ClientError as e:
        return e.response["Error"]["Code"]


def check_message(body: dict[str, Any], started: dict[str, Any], **expected: Any) -> None:
    """The message a worker gets: valid against the schema it checks, and about this job."""
    schema = json.loads((REPO / "schemas" / "build-message.json").read_text())
    assert not list(Draft202012Validator(schema).iter_errors(body)), body
    assert body["executionArn"] == started["executionArn"]
    assert (body["jobId"], body["userId"], body["projectId"]) == (started["jobId"], USER, started["projectId"])
    assert body["heartbeatSeconds"] == HEARTBEAT_SECONDS
    assert body["taskToken"]
    for name, value in expected.items():
        assert body[name] == value, name


# --- the worker answers --------------------------------------------------------------------------------


def test_success_ends_the_job_succeeded_with_the_workers_result(builds: BuildWorkflow, project: str) -> None:
    started = builds.start_job("build", USER, {"timeoutSeconds": 600}, project)
    body = builds.take_run(started["jobId"])
    check_message(body, started, attempt=0, command="sh build.sh", artifacts=["dist/**"], timeoutSeconds=600)
    assert body["taskToken"] != body["queueToken"]
    assert builds.groups[started["jobId"]] == USER, "MessageGroupId is the user: the fair queue's tenant"
    assert token_error(builds, body["taskToken"]) is None, "the worker's heartbeat on the Run token is accepted"
    assert token_error(builds, body["queueToken"]) in TOKEN_GONE, "the queue token was spent by the claim"
    result = {
        "exitCode": 0,
        "durationMs": 1234,
        "artifacts": [{"path": "dist/index.html", "key": f"artifacts/{project}/{started['jobId']}/dist/index.html"}],
        "artifactCount": 1,
        "logGroup": f"/longrun/builds/{project}",
        "logStream": started["jobId"],
    }
    builds.sfn.send_task_success(taskToken=body["taskToken"], output=json.dumps(result))
    assert builds.wait(started["executionArn"], timeout=90) == "SUCCEEDED"
    job = builds.job(started["jobId"])
    assert job["status"] == "SUCCEEDED" and job["result"] == result
    finished = builds.events(started["jobId"])[-1]
    assert finished["type"] == "job.finished" and finished["status"] == "SUCCEEDED" and finished["result"] == result
    assert builds.states_entered(started["executionArn"]) == ["Prepare", "Queue", "Run", "NotifySuccess"]
    queued = [e for e in builds.events(started["jobId"]) if e["type"] == "job.progress" and e["status"] == "QUEUED"]
    assert len(queued) == 1 and queued[0]["step"] == "build" and queued[0]["detail"]["position"] >= 1
    assert queued[0]["detail"]["queueTimeoutSeconds"] >= 60


def test_the_jobs_own_command_is_what_the_worker_runs(builds: BuildWorkflow, project: str) -> None:
    started = builds.start_job("build", USER, {"command": "make -j4 release"}, project)
    body = builds.take_run(started["jobId"])
    check_message(body, started, command="make -j4 release", artifacts=["dist/**"], timeoutSeconds=1800)
    builds.sfn.send_task_failure(taskToken=body["taskToken"], error="BuildFailed", cause=json.dumps(FAILED_CAUSE))
    assert builds.wait(started["executionArn"], timeout=90) == "FAILED"


def test_build_failed_ends_the_job_failed_with_the_workers_message_and_details(
    builds: BuildWorkflow, project: str
) -> None:
    started = builds.start_job("build", USER, {"command": "exit 2"}, project)
    body = builds.take_run(started["jobId"])
    builds.sfn.send_task_failure(taskToken=body["taskToken"], error="BuildFailed", cause=json.dumps(FAILED_CAUSE))
    assert builds.wait(started["executionArn"], timeout=90) == "FAILED"
    job = builds.job(started["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"] == {
        "code": "BuildFailed",
        "message": "the build command exited with code 2",
        "details": [{"exitCode": 2}],
    }
    finished = builds.events(started["jobId"])[-1]
    assert finished["type"] == "job.finished" and finished["error"] == job["error"]
    assert builds.states_entered(started["executionArn"])[-2:] == ["NotifyFailure", "JobFailed"]
    assert builds.sfn.describe_execution(executionArn=started["executionArn"])["error"] == "JobFailed"


def test_build_timed_out_ends_the_job_timed_out(builds: BuildWorkflow, project: str) -> None:
    started = builds.start_job("build", USER, {"command": "sleep 999", "timeoutSeconds": 5}, project)
    body = builds.take_run(started["jobId"])
    assert body["timeoutSeconds"] == 5
    cause = {"errorMessage": "the build ran longer than 5 s", "details": [{"exitCode": 143, "durationMs": 5012}]}
    builds.sfn.send_task_failure(taskToken=body["taskToken"], error="BuildTimedOut", cause=json.dumps(cause))
    assert builds.wait(started["executionArn"], timeout=90) == "FAILED"
    job = builds.job(started["jobId"])
    assert job["status"] == "TIMED_OUT"
    assert job["error"] == {"code": "BuildTimedOut", "message": cause["errorMessage"], "details": cause["details"]}
    assert builds.states_entered(started["executionArn"])[-2:] == ["NotifyTimedOut", "JobTimedOut"]


# --- a worker that goes silent -------------------------------------------------------------------------


@dataclass
class Retried:
    """What a test saw of a build whose first worker never heartbeat and whose retry was answered."""

    first: dict[str, Any]
    second: dict[str, Any]
    seconds_between: float
    first_token_after_retry: str | None
    second_token: str | None
    status: str
    job: dict[str, Any]
    history: list[dict[str, Any]]


@pytest.fixture(scope="module")
def retried(builds: BuildWorkflow, project: str) -> Retried:
    started = builds.start_job("build", USER, {"command": "sh build.sh"}, project)
    first = builds.take_run(started["jobId"])
    taken = time.monotonic()
    second = builds.take_run(started["jobId"], timeout=HEARTBEAT_SECONDS + 15)
    seconds = time.monotonic() - taken
    first_after = token_error(builds, first["taskToken"])
    second_token = token_error(builds, second["taskToken"])
    builds.sfn.send_task_success(taskToken=second["taskToken"], output=json.dumps({"exitCode": 0, "artifacts": []}))
    status = builds.wait(started["executionArn"], timeout=90)
    return Retried(
        first, second, seconds, first_after, second_token, status, builds.job(started["jobId"]),
        builds.history(started["executionArn"]),
    )  # fmt: skip


def test_a_silent_worker_is_replaced_by_a_retry_after_the_heartbeat_timeout(retried: Retried) -> None:
    """No heartbeat for ``heartbeatSeconds``: Run times out and the WorkerLost Choice queues the build again."""
    assert retried.first["attempt"] == 0 and retried.second["attempt"] == 1
    same = ("executionArn", "jobId", "projectId", "command", "artifacts", "timeoutSeconds", "heartbeatSeconds")
    assert {k: retried.second[k] for k in same} == {k: retried.first[k] for k in same}
    assert HEARTBEAT_SECONDS - 1 <= retried.seconds_between <= HEARTBEAT_SECONDS + 8, retried.seconds_between
    assert retried.second_token is None, "the retry's worker heartbeats like any other"
    assert retried.status == "SUCCEEDED"
    assert retried.job["status"] == "SUCCEEDED" and retried.job["result"] == {"exitCode": 0, "artifacts": []}
    types = [e["type"] for e in retried.history]
    assert types.count("TaskTimedOut") == 1 and types.count("TaskScheduled") == 4, "Queue and Run, twice each"
    timed_out = next(e for e in retried.history if e["type"] == "TaskTimedOut")
    assert timed_out["taskTimedOutEventDetails"]["error"] in ("States.HeartbeatTimeout", "States.Timeout")


def test_the_lost_workers_token_is_refused_once_the_build_is_retried(retried: Retried) -> None:
    """The build worker relies on this to stop a build that was given up (its Run token is refused).

    moto's engine made the token once per state entry, so a retry reused it
    (fixed in longrun/local/stepfunctions/patches.py).
    """
    assert retried.second["taskToken"] != retried.first["taskToken"]
    assert retried.first_token_after_retry in TOKEN_GONE


# --- a stop, and a build that cannot start ---------------------------------------------------------------


def test_a_stopped_execution_is_aborted_at_once_and_its_token_refused(builds: BuildWorkflow, project: str) -> None:
    started = builds.start_job("build", USER, {"command": "sleep 600"}, project)
    body = builds.take_run(started["jobId"])
    assert token_error(builds, body["taskToken"]) is None
    stopped_at = time.monotonic()
    builds.sfn.stop_execution(executionArn=started["executionArn"], error="Cancelled", cause="cancelled by the user")
    assert builds.wait(started["executionArn"], timeout=5) == "ABORTED"
    assert time.monotonic() - stopped_at < 3
    assert builds.history(started["executionArn"])[-1]["type"] == "ExecutionAborted"
    assert token_error(builds, body["taskToken"]) in TOKEN_GONE, "the worker's next heartbeat tells it to stop"


def test_a_project_without_a_workspace_fails_in_prepare_and_queues_nothing(builds: BuildWorkflow) -> None:
    started = builds.start_job("build", USER, {"command": "make"}, "prj-" + uuid.uuid4().hex[:16])
    assert builds.wait(started["executionArn"], timeout=90) == "FAILED"
    job = builds.job(started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "WorkspaceNotFound"
    assert started["projectId"] in job["error"]["message"]
    assert builds.states_entered(started["executionArn"]) == ["Prepare", "NotifyFailure", "JobFailed"]
    assert builds.nothing_queued_for(started["jobId"])


# --- the stack's own machine and workers -------------------------------------------------------------


def test_the_stacks_workers_run_a_scaffold_build_end_to_end(project: str, local_cloud: Any) -> None:
    """The real path: the stack's machine and queue, a local worker process, the scaffold's ``sh build.sh``."""
    workflow = Workflow(local_cloud)
    started = workflow.start_job("build", USER, {"command": "echo first; sh build.sh; echo last"}, project)
    assert workflow.wait(started["executionArn"], timeout=60) == "SUCCEEDED"
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("error")
    result = job["result"]
    assert result["exitCode"] == 0 and result["artifactCount"] == len(result["artifacts"]) > 0
    paths = [a["path"] for a in result["artifacts"]]
    assert "dist/index.html" in paths and all(p.startswith("dist/") for p in paths)
    keys = {o["Key"] for o in workflow.s3.list_objects_v2(
        Bucket=workflow.bucket, Prefix=f"artifacts/{project}/{started['jobId']}/")["Contents"]}  # fmt: skip
    assert keys == {a["key"] for a in result["artifacts"]}
    live = [line for e in workflow.events(started["jobId"]) if e["type"] == "job.log" for line in e["lines"]]
    assert live[0] == "first" and live[-1] == "last"
    logs = local_cloud.aws_client("logs").get_log_events(
        logGroupName=result["logGroup"], logStreamName=result["logStream"], startFromHead=True
    )
    assert [e["message"] for e in logs["events"]] == [line or " " for line in live]


def test_ops_history_shows_the_retry_and_its_error(retried: Retried) -> None:
    """``longrun ops history`` reads this execution as an operator would: the build queued and run twice."""
    from longrun.ops import timeline

    found = timeline(retried.first["executionArn"], retried.history)
    assert found.status == "SUCCEEDED"
    runs = [run for run in found.states if run.name == "Run"]
    assert len(runs) == 2 and runs[0].outcome != "succeeded" and runs[1].outcome == "succeeded"
    assert runs[0].errors[0]["error"] in ("States.HeartbeatTimeout", "States.Timeout")
    assert [run.name for run in found.states] == [
        "Prepare", "Queue", "Run", "WorkerLost", "QueueAgain", "Queue", "Run", "NotifySuccess"]  # fmt: skip
    assert all(run.exited and run.exited >= run.entered for run in found.states)


# --- the queue's limit and the lost workers' limit ------------------------------------------------------


def test_a_build_no_worker_claims_ends_timed_out_build_queue_timeout(builds: BuildWorkflow, project: str) -> None:
    """The Queue state's own timeout (QUEUE_SECONDS here, BuildQueueTimeoutSeconds on the stack), no heartbeat."""
    started = builds.start_job("build", USER, {"command": "true"}, project, machine=builds.short_queue_machine)
    body = builds.take(started["jobId"])  # taken but never claimed: a worker that died before its claim
    assert builds.wait(started["executionArn"], timeout=QUEUE_SECONDS + 30) == "FAILED"
    job = builds.job(started["jobId"])
    assert job["status"] == "TIMED_OUT" and job["error"]["code"] == "BuildQueueTimeout", job.get("error")
    assert "3600 s" in job["error"]["message"], "the message names the deployment's limit"
    assert builds.states_entered(started["executionArn"])[-4:] == ["Queue", "QueueTimedOut", "NotifyTimedOut",
                                                                   "JobTimedOut"]  # fmt: skip
    assert token_error(builds, body["taskToken"]) in TOKEN_GONE, "a late worker's claim is refused"
    finished = [e for e in builds.events(started["jobId"]) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["error"]["code"] == "BuildQueueTimeout"


def test_a_build_waits_in_the_queue_longer_than_the_heartbeat(builds: BuildWorkflow, project: str) -> None:
    """The issue's failure: a build whose worker comes 1.5 heartbeat timeouts late still runs (no heartbeat queued)."""
    started = builds.start_job("build", USER, {"command": "true"}, project)
    time.sleep(HEARTBEAT_SECONDS * 1.5)
    assert builds.sfn.describe_execution(executionArn=started["executionArn"])["status"] == "RUNNING"
    body = builds.take_run(started["jobId"])
    assert body["attempt"] == 0, "still the first run: waiting was no lost worker"
    builds.sfn.send_task_success(taskToken=body["taskToken"], output=json.dumps({"exitCode": 0, "artifacts": []}))
    assert builds.wait(started["executionArn"], timeout=60) == "SUCCEEDED"


def test_three_lost_workers_end_the_job_timed_out_worker_lost(builds: BuildWorkflow, project: str) -> None:
    started = builds.start_job("build", USER, {"command": "sh build.sh"}, project)
    attempts = []
    for _ in range(3):  # each claims, takes its Run token, and goes silent
        attempts.append(builds.take_run(started["jobId"], timeout=HEARTBEAT_SECONDS + 20)["attempt"])
    assert attempts == [0, 1, 2]
    assert builds.wait(started["executionArn"], timeout=HEARTBEAT_SECONDS + 30) == "FAILED"
    job = builds.job(started["jobId"])
    assert job["status"] == "TIMED_OUT" and job["error"]["code"] == "WorkerLost", job.get("error")
    assert builds.nothing_queued_for(started["jobId"])
    history = builds.history(started["executionArn"])
    assert len(history) < 200, "bounded: three rounds of Queue and Run"
