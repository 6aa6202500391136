"""git-clone through the REST API and the WebSocket, from repositories served on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.helpers import create_project, http, wait_for_status
from tests.e2e.test_openapi_conformance import check
from tests.support.git_server import GitServer, make_repository

USER = "gina"


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("git-server")
    make_repository(root, "public.git", {"README.md": "public\n", "src/app.js": "1\n"}, branches=("develop",))
    make_repository(root, "private.git", {"README.md": "private\n"})
    make_repository(root, "slow.git", {"README.md": "slow\n"})
    make_repository(root, "flow.git", {"README.md": "flow\n"}, branches=("develop", "feature/login"))
    server = GitServer(root, private={"private.git": ("gina", "s3cret-token")}, delay={"slow.git": 1.0})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(local_cloud):
    return create_project(local_cloud, USER)


def clone(local_cloud, project_id, **params):
    response = http(
        local_cloud, "POST", "/jobs", USER, json={"type": "git-clone", "projectId": project_id, "params": params}
    )
    return response


def test_clone_replaces_the_workspace_and_reports_progress(local_cloud, git_server, project):
    response = clone(local_cloud, project, repoUrl=f"{git_server.url}/public.git", ref="develop", depth=1)
    assert response.status_code == 202, response.text
    job = wait_for_status(local_cloud, response.json()["jobId"], USER)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["branch"] == "develop" and len(job["result"]["commit"]) == 40
    assert job["result"]["branches"] == ["develop", "main"], "a shallow clone still fetches every branch"
    workspace = local_cloud.efs_root() / "projects" / project
    assert (workspace / "src" / "app.js").read_text() == "1\n"
    shallow = subprocess.run(["git", "-C", str(workspace), "rev-parse", "--is-shallow-repository"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert shallow == "true"
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events", USER).json()["items"]
    details = [e["detail"] for e in events if e["type"] == "job.progress" and e["status"] == "STARTED" and e["detail"]]
    assert details and all({"phase", "percent"} <= set(d) for d in details)
    assert not any(name.startswith(".clone-") for name in (p.name for p in workspace.parent.iterdir()))


def test_private_repository_with_stored_credentials(local_cloud, git_server, project):
    ssm = local_cloud.aws_client("ssm")
    ssm.put_parameter(Name=f"/longrun/git-credentials/{USER}/origin", Type="SecureString", Overwrite=True,
                      Value=json.dumps({"username": "gina", "password": "s3cret-token"}))  # fmt: skip
    denied = clone(local_cloud, project, repoUrl=f"{git_server.url}/private.git").json()
    assert wait_for_status(local_cloud, denied["jobId"], USER)["status"] == "FAILED"
    granted = clone(local_cloud, project, repoUrl=f"{git_server.url}/private.git", credentials="origin").json()
    job = wait_for_status(local_cloud, granted["jobId"], USER)
    assert job["status"] == "SUCCEEDED", job["error"]
    events = http(local_cloud, "GET", f"/jobs/{granted['jobId']}/events", USER).json()["items"]
    assert "s3cret-token" not in json.dumps([job, events]), "the secret never reaches the job or its events"
    missing = clone(local_cloud, project, repoUrl=f"{git_server.url}/private.git", credentials="nope").json()
    failed = wait_for_status(local_cloud, missing["jobId"], USER)
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "CredentialsNotFound"


@pytest.mark.parametrize(
    ("url", "secret"),
    [("https://user:hunter2@example.com/r.git", "hunter2"), ("--upload-pack=touch /tmp/x", None),
     ("ext::sh -c touch% /tmp/x", None), ("file:///etc", None), ("https://169.254.169.254/x.git", None),
     ("http://example.com/r.git", None)],
)  # fmt: skip
def test_hostile_urls_are_400_before_anything_runs(local_cloud, project, url, secret):
    response = clone(local_cloud, project, repoUrl=url)
    assert response.status_code == 400
    assert [d["path"] for d in response.json()["error"]["details"]] == ["params.repoUrl"]
    if secret:
        assert secret not in response.text


def test_one_git_job_per_project(local_cloud, git_server, project):
    first = clone(local_cloud, project, repoUrl=f"{git_server.url}/slow.git")
    assert first.status_code == 202
    second = clone(local_cloud, project, repoUrl=f"{git_server.url}/public.git")
    assert second.status_code == 409
    check("POST", "/jobs", second)  # the documented error body, details included
    error = second.json()["error"]
    assert error["code"] == "ProjectBusy" and error["details"][0]["jobId"] == first.json()["jobId"]
    assert wait_for_status(local_cloud, first.json()["jobId"], USER)["status"] == "SUCCEEDED"
    third = clone(local_cloud, project, repoUrl=f"{git_server.url}/public.git")
    assert third.status_code == 202, "the lock was released when the first job ended"
    wait_for_status(local_cloud, third.json()["jobId"], USER)


def test_cancelling_a_git_job_frees_the_project_and_its_clone_is_thrown_away(local_cloud, git_server, project):
    slow = clone(local_cloud, project, repoUrl=f"{git_server.url}/slow.git").json()
    cancelled = http(local_cloud, "DELETE", f"/jobs/{slow['jobId']}", USER)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "CANCELLED"
    after = clone(local_cloud, project, repoUrl=f"{git_server.url}/public.git")
    assert after.status_code == 202, f"the cancel released the lock: {after.text}"
    assert wait_for_status(local_cloud, after.json()["jobId"], USER)["status"] == "SUCCEEDED"
    time.sleep(3)  # longer than the slow server's delay: the cancelled clone's Lambda has ended
    workspace = local_cloud.efs_root() / "projects" / project
    assert (workspace / "README.md").read_text() == "public\n", "the cancelled clone never replaced the workspace"
    assert wait_for_status(local_cloud, slow["jobId"], USER)["status"] == "CANCELLED"
    assert not [p.name for p in workspace.parent.iterdir() if p.name.startswith((".clone-", ".replaced-"))]


def test_every_origin_branch_is_local_so_a_git_flow_finish_works_on_the_clone(local_cloud, git_server):
    """The issue's case: main, develop and feature/login cloned, then feature-finish (was BranchNotFound)."""
    project_id = create_project(local_cloud, USER)
    response = clone(local_cloud, project_id, repoUrl=f"{git_server.url}/flow.git", depth=1)
    job = wait_for_status(local_cloud, response.json()["jobId"], USER)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["branches"] == ["develop", "feature/login", "main"]
    workspace = local_cloud.efs_root() / "projects" / project_id
    listing = ["git", "-C", str(workspace), "for-each-ref", "--format=%(refname:short) %(upstream:short)", "refs/heads"]
    upstream = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split("\n")
    assert "feature/login origin/feature/login" in upstream and "develop origin/develop" in upstream
    body = {"type": "git-merge", "projectId": project_id, "params": {"flow": "feature-finish", "name": "login"}}
    merged = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert merged.status_code == 202, merged.text
    finished = wait_for_status(local_cloud, merged.json()["jobId"], USER)
    assert finished["status"] == "SUCCEEDED", finished["error"]
    assert finished["result"]["target"] == "develop"
