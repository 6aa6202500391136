"""Jobs whose executions end outside their workflow's steps are closed anyway, exactly once.

The executions here run small state machines of the test's own, named like the stack's
(``longrun-…``), so the stack's rule on Step Functions' "Execution Status Change" events takes
them as it takes the stack's own: a state machine timeout, a Stop behind the API's back, a Fail
that no notify step preceded. The job is written as the API writes it, naming its execution.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.workflows.engine import Workflow

USER = "olga"


@pytest.fixture(scope="module")
def workflow(local_cloud: Any) -> Workflow:
    return Workflow(local_cloud)


def probe(workflow: Workflow, states: dict[str, Any], timeout: int | None = None) -> str:
    """A state machine of the test's own whose name the stack's rule matches (``longrun-``)."""
    definition: dict[str, Any] = {"StartAt": next(iter(states)), "States": states}
    if timeout is not None:
        definition["TimeoutSeconds"] = timeout
    return workflow.sfn.create_state_machine(
        name=f"longrun-probe-{uuid.uuid4().hex[:10]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/probe",
    )["stateMachineArn"]


WAIT = {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}


def closed(workflow: Workflow, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := workflow.job(job_id))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the job was never closed"
        time.sleep(0.2)
    return job


def finished_events(workflow: Workflow, job_id: str) -> list[dict[str, Any]]:
    time.sleep(1)  # a second close would come right after the first
    return [e for e in workflow.events(job_id) if e["type"] == "job.finished"]


def test_an_execution_past_its_timeout_closes_its_job_timed_out(workflow: Workflow) -> None:
    started = workflow.start_job("build", USER, {}, "prj-timeout", machine=probe(workflow, WAIT, timeout=2))
    job = closed(workflow, started["jobId"])
    assert job["status"] == "TIMED_OUT" and job["error"]["code"] == "ExecutionTimedOut"
    [finished] = finished_events(workflow, started["jobId"])
    assert finished["status"] == "TIMED_OUT"


def test_a_stop_behind_the_apis_back_cancels_the_job_and_frees_the_project(workflow: Workflow) -> None:
    project = f"prj-{uuid.uuid4().hex[:12]}"
    started = workflow.start_job("git-clone", USER, {"repoUrl": "https://example.com/r.git"}, project, lock=True,
                                 machine=probe(workflow, WAIT))  # fmt: skip
    assert workflow.lock_holder(project) == started["jobId"]
    workflow.sfn.stop_execution(executionArn=started["executionArn"])  # the console's Stop, no reason given
    job = closed(workflow, started["jobId"])
    assert job["status"] == "CANCELLED" and job["error"]["code"] == "ExecutionAborted"
    assert len(finished_events(workflow, started["jobId"])) == 1
    assert workflow.lock_holder(project) is None, "the git lock is given back on this path too"


def test_a_stop_that_names_its_reason_fails_the_job_with_it_and_frees_the_project(workflow: Workflow) -> None:
    project = f"prj-{uuid.uuid4().hex[:12]}"
    started = workflow.start_job("git-clone", USER, {"repoUrl": "https://example.com/r.git"}, project, lock=True,
                                 machine=probe(workflow, WAIT))  # fmt: skip
    workflow.sfn.stop_execution(executionArn=started["executionArn"], error="Operator", cause="stopped in the console")
    job = closed(workflow, started["jobId"])
    assert job["status"] == "FAILED" and job["error"] == {"code": "Operator", "message": "stopped in the console"}, job
    assert len(finished_events(workflow, started["jobId"])) == 1
    assert workflow.lock_holder(project) is None


def test_a_failure_no_notify_step_reported_closes_the_job_with_its_error(workflow: Workflow) -> None:
    machine = probe(workflow, {"Boom": {"Type": "Fail", "Error": "Boom", "Cause": "the notify step never ran"}})
    started = workflow.start_job("build", USER, {}, "prj-failed", machine=machine)
    job = closed(workflow, started["jobId"])
    # A step's own error that no Catch took is told as the notify step would have told it.
    assert job["status"] == "FAILED" and job["error"] == {"code": "Boom", "message": "the notify step never ran"}
    assert len(finished_events(workflow, started["jobId"])) == 1


def test_a_failure_of_step_functions_itself_is_told_as_the_executions_failure(workflow: Workflow) -> None:
    machine = probe(workflow, {"Lost": {"Type": "Pass", "InputPath": "$.no.such.path", "End": True}})
    started = workflow.start_job("build", USER, {}, "prj-failed", machine=machine)
    job = closed(workflow, started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "ExecutionFailed"
    assert "States.Runtime" in job["error"]["message"] and "no.such.path" in job["error"]["message"]


def test_a_job_closed_by_its_notify_step_is_not_closed_again(workflow: Workflow) -> None:
    """The stack's own failure path: notify closes the job, then the Fail state ends the execution FAILED."""
    started = workflow.start_job("build", USER, {"command": "true"}, f"prj-{uuid.uuid4().hex[:12]}")
    assert workflow.wait(started["executionArn"], timeout=60) == "FAILED"  # no workspace: Prepare fails
    job = closed(workflow, started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "WorkspaceNotFound", "notify's error, not replaced"
    assert len(finished_events(workflow, started["jobId"])) == 1


def test_an_execution_that_is_not_its_jobs_own_changes_nothing(workflow: Workflow) -> None:
    """An execution whose input names a job that names another execution (a stray, a copy) is ignored."""
    started = workflow.start_job("build", USER, {}, "prj-own", machine=probe(workflow, WAIT))
    stray = workflow.sfn.start_execution(
        stateMachineArn=probe(workflow, {"Boom": {"Type": "Fail", "Error": "Stray"}}),
        input=json.dumps({"jobId": started["jobId"]}),
        name=f"stray-{uuid.uuid4().hex[:8]}",
    )["executionArn"]
    assert workflow.wait(stray, timeout=30) == "FAILED"
    time.sleep(3)  # time for the stray's event to reach the trigger
    assert workflow.job(started["jobId"])["status"] == "RUNNING"
    workflow.sfn.stop_execution(executionArn=started["executionArn"])
    assert closed(workflow, started["jobId"])["status"] == "CANCELLED"
