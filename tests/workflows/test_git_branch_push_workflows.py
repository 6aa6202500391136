"""``statemachines/git_branch.asl.json`` and ``git_push.asl.json`` run on the local engine with the real steps.

One test per path: the work state then NotifySuccess, and each answer the Catch routes to
NotifyFailure (BranchExists, PushRejected with its refs), with the project's lock given back on
every exit, as for git-clone and git-merge (tests/workflows/test_git_workflows.py).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from core.locks import LOCK_SECONDS
from tests.e2e.test_git_merge import ENV, commit_on, git
from tests.support.git_server import GitServer, make_repository, rev_parse
from tests.workflows.engine import Workflow

USER = "wf-git-bp"


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    root = tmp_path_factory.mktemp("wf-git-push-server")
    bare = make_repository(root, "flow.git", {"README.md": "flow\n"}, branches=("develop",))
    server = GitServer(root)
    yield server, bare
    server.stop()


@pytest.fixture
def project(workflow, local_cloud) -> tuple[str, Path]:
    started = workflow.start(USER, f"wf-{uuid.uuid4().hex[:10]}")
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    return started["projectId"], local_cloud.efs_root() / "projects" / started["projectId"]


def test_a_feature_start_visits_branch_then_notify_and_gives_the_lock_back(workflow, project):
    project_id, repo = project
    started = workflow.start_job("git-branch", USER, {"flow": "feature-start", "name": "login"}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == ["Branch", "NotifySuccess"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED"
    assert job["result"]["branch"] == "feature/login" and job["result"]["commit"] == git(repo, "rev-parse", "develop")
    assert git(repo, "branch", "--show-current") == "feature/login"
    assert workflow.lock_holder(project_id) is None


def test_an_existing_branch_ends_in_notify_failure(workflow, project):
    project_id, _ = project
    started = workflow.start_job("git-branch", USER, {"name": "develop"}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["Branch", "NotifyFailure", "JobFailed"]
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED" and job["error"]["code"] == "BranchExists"
    finished = [e for e in workflow.events(started["jobId"]) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["error"] == job["error"]
    assert workflow.lock_holder(project_id) is None


def _cloned(workflow: Workflow, project_id: str, server: GitServer) -> None:
    started = workflow.start_job("git-clone", USER, {"repoUrl": f"{server.url}/flow.git"}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"


def test_a_push_visits_push_then_notify(workflow, project, origin):
    project_id, repo = project
    server, bare = origin
    _cloned(workflow, project_id, server)
    tip = commit_on(repo, "main", "pushed.txt", "pushed\n")
    started = workflow.start_job("git-push", USER, {"branches": ["main"]}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    assert workflow.states_entered(started["executionArn"]) == ["Push", "NotifySuccess"]
    result = workflow.job(started["jobId"])["result"]
    assert [(p["ref"], p["new"], p["status"]) for p in result["pushed"]] == [("refs/heads/main", tip, "fast-forward")]
    assert rev_parse(bare, "refs/heads/main") == tip
    assert workflow.lock_holder(project_id) is None


def test_a_rejected_push_ends_in_notify_failure_with_the_refs(workflow, project, origin, tmp_path):
    project_id, repo = project
    server, bare = origin
    _cloned(workflow, project_id, server)
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", f"{server.url}/flow.git", str(other)], env=ENV, check=True)
    theirs = commit_on(other, "develop", "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", "develop")
    commit_on(repo, "develop", "ours.txt", "ours\n")
    started = workflow.start_job("git-push", USER, {"branches": ["develop"]}, project_id, lock=True)
    assert workflow.wait(started["executionArn"]) == "FAILED"
    assert workflow.states_entered(started["executionArn"]) == ["Push", "NotifyFailure", "JobFailed"]
    error = workflow.job(started["jobId"])["error"]
    assert error["code"] == "PushRejected"
    refused = {"path": "refs/heads/develop", "message": "rejected: fetch first", "reason": "fetch first"}
    assert error["details"] == [refused]
    assert rev_parse(bare, "refs/heads/develop") == theirs
    assert workflow.lock_holder(project_id) is None


def test_the_state_machines_stop_before_the_lock_lapses(workflow):
    for job_type in ("git-branch", "git-push"):
        definition = workflow.sfn.describe_state_machine(stateMachineArn=workflow.machine(job_type))["definition"]
        assert 0 < json.loads(definition)["TimeoutSeconds"] < LOCK_SECONDS, job_type
