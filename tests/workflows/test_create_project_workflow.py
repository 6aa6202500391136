"""``statemachines/create_project.asl.json`` run on the local engine (moto's Step Functions, real Lambdas).

Every Catch must undo what was done and end in ``NotifyFailure`` with a ``FAILED`` ``job.finished``.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.workflows.engine import Workflow


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
        "StartingPoint",
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
        "StartingPoint",
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
