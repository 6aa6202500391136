"""``statemachines/git_clone.asl.json``, ``git_merge.asl.json`` and ``git_pull.asl.json`` run on the local engine.

The API takes the project's git lock before it starts an execution; these tests take it the same
way, start executions directly and check that every exit (success, each failure the Catch routes
to ``NotifyFailure``) gives the lock back, and only the lock this job holds.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from core.locks import LOCK_SECONDS
from tests.e2e.test_git_merge import commit_on, git
from tests.support.git_server import GitServer, make_repository
from tests.workflows.engine import Workflow

USER = "wf-git"


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf-git-server")
    make_repository(root, "app.git", {"README.md": "app\n", "index.html": "<h1>app</h1>\n"})
    server = GitServer(root)
    yield server
    server.stop()


@pytest.fixture
def project(workflow) -> str:
    started = workflow.start(USER, f"wf-{uuid.uuid4().hex[:10]}")
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    return started["projectId"]


def test_a_clone_visits_clone_then_notify_and_gives_the_lock_back(workflow, git_server, project, local_cloud):
    started = workflow.start_job("git-clone", USER, {"repoUrl": f"{git_server.url}/app.git"}, project, lock=True)
    assert workflow.lock_holder(project) == started["jobId"]
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == ["Clone", "NotifySuccess"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED" and len(job["result"]["commit"]) == 40
    assert (local_cloud.efs_root() / "projects" / project / "index.html").read_text() == "<h1>app</h1>\n"
    assert workflow.lock_holder(project) is None


def test_a_hostile_url_that_slipped_past_the_api_is_refused_by_the_step(workflow, project, tmp_path):
    """Defence in depth: the step checks its input again, so a caller with StartExecution rights cannot inject."""
    canary = tmp_path / "canary"
    started = workflow.start_job("git-clone", USER, {"repoUrl": f"ext::sh -c touch% {canary}"}, project, lock=True)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["Clone", "NotifyFailure", "JobFailed"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "GitInputError"
    assert not canary.exists()
    assert workflow.lock_holder(project) is None


def test_a_host_that_does_not_resolve_fails_host_not_found(workflow, project):
    started = workflow.start_job("git-clone", USER, {"repoUrl": "https://no-such-host.invalid/r.git"}, project)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    job = workflow.job(started["jobId"])
    assert job["error"]["code"] == "HostNotFound" and "no-such-host.invalid" in job["error"]["message"]
    finished = [e for e in workflow.events(started["jobId"]) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["error"] == job["error"]


def test_a_merge_conflict_ends_in_notify_failure_with_the_paths(workflow, project, local_cloud):
    repo: Path = local_cloud.efs_root() / "projects" / project
    commit_on(repo, "left", "README.md", "left\n", start="main")
    commit_on(repo, "right", "README.md", "right\n", start="main")
    git(repo, "merge", "-q", "left")
    started = workflow.start_job("git-merge", USER, {"source": "right", "target": "main"}, project, lock=True)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["Merge", "NotifyFailure", "JobFailed"]
    error = workflow.job(started["jobId"])["error"]
    assert error["code"] == "MergeConflict" and error["details"] == [{"path": "README.md", "message": "conflict"}]
    assert git(repo, "status", "--porcelain") == ""
    assert workflow.lock_holder(project) is None


def test_a_job_whose_lock_another_job_holds_fails_busy_and_leaves_that_lock(workflow, git_server, project):
    """A lock that lapsed and was retaken belongs to its new holder: the old job neither clones nor releases it."""
    workflow.ddb.put_item(
        TableName=workflow.projects_table,
        Item={"pk": {"S": f"lock#{project}"}, "jobId": {"S": "someone-else"}, "expiresAt": {"N": "9999999999"}},
    )
    late = workflow.start_job("git-clone", USER, {"repoUrl": f"{git_server.url}/app.git"}, project)
    assert workflow.wait(late["executionArn"]) == "FAILED"
    assert workflow.job(late["jobId"])["error"]["code"] == "ProjectBusy"
    assert workflow.lock_holder(project) == "someone-else"


def test_the_state_machines_stop_before_the_lock_lapses(workflow):
    """A whole git execution is bounded below the lock's 30 minutes, so a live job never loses its lock."""
    for job_type in ("git-clone", "git-merge", "git-pull"):
        definition = workflow.sfn.describe_state_machine(stateMachineArn=workflow.machine(job_type))["definition"]
        assert 0 < json.loads(definition)["TimeoutSeconds"] < LOCK_SECONDS, job_type


def test_a_pull_visits_pull_then_notify_and_a_project_never_cloned_fails_no_origin(workflow, git_server, project):
    """A scaffold has no origin: NoOrigin through the Catch. Once cloned, the pull is up to date."""
    lonely = workflow.start_job("git-pull", USER, {"strategy": "ff-only"}, project, lock=True)
    assert workflow.wait(lonely["executionArn"]) == "FAILED"
    assert workflow.states_entered(lonely["executionArn"]) == ["Pull", "NotifyFailure", "JobFailed"]
    assert workflow.job(lonely["jobId"])["error"]["code"] == "NoOrigin"
    assert workflow.lock_holder(project) is None
    cloned = workflow.start_job("git-clone", USER, {"repoUrl": f"{git_server.url}/app.git"}, project, lock=True)
    assert workflow.wait(cloned["executionArn"]) == "SUCCEEDED"
    pulled = workflow.start_job("git-pull", USER, {"strategy": "ff-only"}, project, lock=True)
    assert workflow.wait(pulled["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(pulled["executionArn"]) == ["Pull", "NotifySuccess"]
    job = workflow.job(pulled["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert job["result"]["updated"] is False, "nothing moved since the clone"
    assert job["result"]["commit"] == workflow.job(cloned["jobId"])["result"]["commit"]
    assert workflow.lock_holder(project) is None
