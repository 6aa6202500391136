"""git-pull and create-project from a repoUrl through the REST API, against a git server on 127.0.0.1.

The origin moves as another developer's pushes would move it: commits pushed from a second clone of
the bare repository the server serves. The project's workspace is checked as a user of the IDE sees it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import create_project, http, unique_name, wait_for_status
from tests.e2e.test_git_merge import git
from tests.support.git_server import GitServer, make_repository

USER = "pia"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("pull-server")
    make_repository(root, "app.git", {"README.md": "app\n", "notes.txt": "one\n"}, branches=("develop",))
    make_repository(root, "flow.git", {"README.md": "flow\n"}, branches=("develop", "feature/login"))
    served = GitServer(root)
    yield served, root
    served.stop()


@pytest.fixture(scope="module")
def developer(server, tmp_path_factory) -> Path:
    """Another developer's clone of the origin: what it pushes is what the origin gains."""
    _, root = server
    work = tmp_path_factory.mktemp("developer") / "app"
    subprocess.run(["git", "clone", "-q", str(root / "app.git"), str(work)], check=True, capture_output=True)
    return work


@pytest.fixture(scope="module")
def workspace(local_cloud, server) -> tuple[str, Path]:
    served, _ = server
    project_id = create_project(local_cloud, USER)
    body = {"type": "git-clone", "projectId": project_id, "params": {"repoUrl": f"{served.url}/app.git"}}
    cloned = http(local_cloud, "POST", "/jobs", USER, json=body).json()
    assert wait_for_status(local_cloud, cloned["jobId"], USER)["status"] == "SUCCEEDED"
    return project_id, local_cloud.efs_root() / "projects" / project_id


def push(developer: Path, path: str, text: str) -> str:
    """A commit on main pushed to the origin; its id."""
    git(developer, "pull", "-q", "--rebase", "origin", "main")
    (developer / path).write_text(text)
    git(developer, "add", path)
    git(developer, "commit", "-q", "-m", f"{path} from another developer")
    git(developer, "push", "-q", "origin", "main")
    return git(developer, "rev-parse", "HEAD")


def commit_here(repo: Path, path: str, text: str) -> str:
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", f"{path} in the IDE")
    return git(repo, "rev-parse", "HEAD")


def seen(repo: Path) -> dict[str, object]:
    """HEAD, the branches, status and every file's bytes: what must not change when a pull is refused."""
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branches": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "status": git(repo, "status", "--porcelain"),
        "files": files,
    }


def pull(local_cloud, project_id: str, **params) -> dict:
    body = {"type": "git-pull", "projectId": project_id, "params": params}
    response = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert response.status_code == 202, response.text
    return wait_for_status(local_cloud, response.json()["jobId"], USER)


def test_pull_after_the_origin_moved_then_nothing_to_do(local_cloud, workspace, developer):
    project_id, repo = workspace
    tip = push(developer, "notes.txt", "two\n")
    job = pull(local_cloud, project_id)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["updated"] is True and job["result"]["commit"] == tip
    assert (repo / "notes.txt").read_text() == "two\n" and git(repo, "rev-parse", "HEAD") == tip
    again = pull(local_cloud, project_id)
    assert again["status"] == "SUCCEEDED" and again["result"]["updated"] is False and again["result"]["commit"] == tip


def test_diverged_ff_only_is_refused_unchanged_and_rebase_then_brings_it_in(local_cloud, workspace, developer):
    project_id, repo = workspace
    theirs = push(developer, "theirs.txt", "theirs\n")
    commit_here(repo, "mine.txt", "mine\n")
    before = seen(repo)
    job = pull(local_cloud, project_id, strategy="ff-only")
    assert job["status"] == "FAILED" and job["error"]["code"] == "NotFastForward"
    assert seen(repo) == before, "HEAD, branches, status and files as they were"
    rebased = pull(local_cloud, project_id, strategy="rebase")
    assert rebased["status"] == "SUCCEEDED", rebased["error"]
    assert git(repo, "rev-parse", "HEAD^") == theirs, "the IDE's commit replayed on the origin's"
    assert (repo / "mine.txt").read_text() == "mine\n" and (repo / "theirs.txt").read_text() == "theirs\n"
    assert rebased["result"] == {**rebased["result"], "updated": True, "commit": git(repo, "rev-parse", "HEAD")}


def test_a_conflicting_merge_fails_with_its_paths_and_leaves_the_workspace_as_it_was(local_cloud, workspace, developer):
    project_id, repo = workspace
    push(developer, "README.md", "theirs\n")
    commit_here(repo, "README.md", "mine\n")
    before = seen(repo)
    job = pull(local_cloud, project_id, strategy="merge")
    assert job["status"] == "FAILED" and job["error"]["code"] == "MergeConflict"
    assert job["error"]["details"] == [{"path": "README.md", "message": "conflict"}]
    assert seen(repo) == before
    assert not (repo / ".git" / "MERGE_HEAD").exists(), "no merge left in progress"


def test_bad_pull_requests_are_400_and_a_scaffold_has_no_origin(local_cloud):
    project_id = create_project(local_cloud, USER)
    for params in ({"strategy": "force"}, {"branch": "--upload-pack=x"}, {"branch": "a..b"}, {"remote": "x"},
                   {"credentials": "../x"}):  # fmt: skip
        body = {"type": "git-pull", "projectId": project_id, "params": params}
        assert http(local_cloud, "POST", "/jobs", USER, json=body).status_code == 400, params
    job = pull(local_cloud, project_id)
    assert job["status"] == "FAILED" and job["error"]["code"] == "NoOrigin"


def test_create_project_from_a_repository_clones_every_branch(local_cloud, server):
    served, _ = server
    name = unique_name("from-repo")
    body = {"type": "create-project", "params": {"name": name, "repoUrl": f"{served.url}/flow.git"}}
    response = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert response.status_code == 202, response.text
    execution = local_cloud.aws_client("stepfunctions").describe_execution(executionArn=response.json()["executionArn"])
    assert "template" not in json.loads(execution["input"])["params"], "no template default for a clone"
    job = wait_for_status(local_cloud, response.json()["jobId"], USER)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["defaultBranch"] == "main"
    repo = local_cloud.efs_root() / "projects" / job["projectId"]
    assert (repo / "README.md").read_text() == "flow\n"
    assert git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split() == [
        "develop", "feature/login", "main",
    ]  # fmt: skip
    project = http(local_cloud, "GET", f"/projects/{job['projectId']}", USER).json()
    assert project["repoUrl"] == f"{served.url}/flow.git" and project["template"] is None
    finish = {"type": "git-merge", "projectId": job["projectId"], "params": {"flow": "feature-finish", "name": "login"}}
    merged = http(local_cloud, "POST", "/jobs", USER, json=finish).json()
    assert wait_for_status(local_cloud, merged["jobId"], USER)["status"] == "SUCCEEDED"


def test_create_project_from_a_repository_that_fails_gives_the_name_back(local_cloud, server):
    served, _ = server
    name = unique_name("no-repo")
    body = {"type": "create-project", "params": {"name": name, "repoUrl": f"{served.url}/missing.git"}}
    job = wait_for_status(local_cloud, http(local_cloud, "POST", "/jobs", USER, json=body).json()["jobId"], USER)
    assert job["status"] == "FAILED" and job["error"]["code"] == "GitFailed"
    assert not (local_cloud.efs_root() / "projects" / job["projectId"]).exists()
    assert http(local_cloud, "GET", f"/projects/{job['projectId']}", USER).status_code == 404
    again = http(local_cloud, "POST", "/jobs", USER, json={"type": "create-project", "params": {"name": name}})
    assert again.status_code == 202, "the name was released"
    assert wait_for_status(local_cloud, again.json()["jobId"], USER)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    "params",
    [{"repoUrl": "ext::sh -c touch% /tmp/x"}, {"repoUrl": "https://u:hunter2@example.com/r.git"},
     {"repoUrl": "file:///etc"}, {"repoUrl": "https://example.com/r.git", "template": "web-app"},
     {"credentials": "origin"}],
)  # fmt: skip
def test_create_project_refuses_a_hostile_url_or_two_starting_points(local_cloud, params):
    body = {"type": "create-project", "params": {"name": unique_name("bad"), **params}}
    response = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ValidationError" and "hunter2" not in response.text
