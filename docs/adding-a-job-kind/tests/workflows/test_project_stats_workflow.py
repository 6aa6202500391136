"""``statemachines/project_stats.asl.json`` on the local engine: the count, and ``TooManyFiles`` through the Catch.

Executions are started directly (``tests.workflows.engine``), the job written as the API writes it,
so each path of the machine is visible in its history: the states it entered, the job's final record.
"""

from __future__ import annotations

import uuid

import pytest

from tests.workflows.engine import Workflow

USER = "wf-stats"


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


@pytest.fixture(scope="module")
def project(workflow) -> str:
    """A project made by a create-project job: its scaffold's files are what project-stats counts."""
    started = workflow.start(USER, f"wf-{uuid.uuid4().hex[:10]}")
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    return started["projectId"]


def test_the_count_is_the_projects_objects_and_their_bytes(workflow, project) -> None:
    listed = workflow.s3.list_objects_v2(Bucket=workflow.bucket, Prefix=f"projects/{project}/")["Contents"]

    started = workflow.start_job("project-stats", USER, {"maxFiles": 10000}, project)

    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == ["CountFiles", "NotifySuccess"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED"
    assert job["result"] == {
        "files": len(listed),
        "bytes": sum(o["Size"] for o in listed),
        "s3Prefix": f"projects/{project}/",
    }


def test_more_files_than_max_files_ends_in_notify_failure_with_too_many_files(workflow, project) -> None:
    started = workflow.start_job("project-stats", USER, {"maxFiles": 1}, project)

    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["CountFiles", "NotifyFailure", "JobFailed"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "TooManyFiles" and "more than 1 files" in job["error"]["message"]
    finished = [e for e in workflow.events(started["jobId"]) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["error"] == job["error"]
