"""delete-project's ASL on the local engine with the real steps: executions started directly.

One test per path: the delete (the two loops, then the records and NotifySuccess) and the
project that is not there (``ProjectNotFound`` through the Catch to JobFailed, one job.finished).
"""

from __future__ import annotations

import uuid

import pytest

from tests.workflows.engine import Workflow

USER = "wf-deleter"


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


def test_a_delete_runs_both_loops_then_the_records(workflow, local_cloud):
    created = workflow.start(USER, f"wf-{uuid.uuid4().hex[:10]}")
    assert workflow.wait(created["executionArn"]) == "SUCCEEDED"
    project_id = created["projectId"]
    workflow.s3.put_object(Bucket=workflow.bucket, Key=f"projects/{project_id}/extra.txt", Body=b"1")
    workflow.s3.put_object(Bucket=workflow.bucket, Key=f"projects/{project_id}/extra.txt", Body=b"2")
    started = workflow.start_job("delete-project", USER, {}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == [
        "MarkDeleting",
        "DeleteObjects",
        "ObjectsLeft",
        "RemoveWorkspace",
        "FilesLeft",
        "RemoveRecords",
        "NotifySuccess",
    ]
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED"
    assert job["result"]["deleted"]["objects"] >= 2 and job["result"]["deleted"]["files"] >= 2
    assert workflow.objects(project_id) == []
    assert workflow.lock_holder(project_id) is None
    assert not (local_cloud.efs_root() / "projects" / project_id).exists()
    finished = [e for e in workflow.events(started["jobId"]) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["result"] == job["result"]


def test_a_project_that_is_not_there_fails_through_the_catch(workflow):
    started = workflow.start_job("delete-project", USER, {}, f"prj-{uuid.uuid4().hex[:16]}", lock=True)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["MarkDeleting", "NotifyFailure", "JobFailed"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "ProjectNotFound"
    assert [e["type"] for e in workflow.events(started["jobId"])].count("job.finished") == 1
    assert workflow.lock_holder(started["projectId"]) is None
