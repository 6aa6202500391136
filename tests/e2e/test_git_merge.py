"""git-merge through the REST API: each strategy, each git-flow finish, a conflict, a push."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import create_project, http, wait_for_status
from tests.support.git_server import GitServer, make_repository

USER = "mona"
ENV = {
    "PATH": os.environ["PATH"],
    "HOME": "/tmp",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "m",
    "GIT_AUTHOR_EMAIL": "m@example.com",
    "GIT_COMMITTER_NAME": "m",
    "GIT_COMMITTER_EMAIL": "m@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit_on(repo: Path, branch: str, path: str, text: str, start: str | None = None) -> str:
    """A commit on ``branch`` (made from ``start`` if new), as a user's own work would be; back to main after."""
    if start:
        git(repo, "checkout", "-q", "-b", branch, start)
    else:
        git(repo, "checkout", "-q", branch)
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", f"change {path} on {branch}")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return head


@pytest.fixture
def project(local_cloud):
    project_id = create_project(local_cloud, USER)
    return project_id, local_cloud.efs_root() / "projects" / project_id


def merge(local_cloud, project_id: str, **params) -> dict:
    response = http(
        local_cloud, "POST", "/jobs", USER, json={"type": "git-merge", "projectId": project_id, "params": params}
    )
    assert response.status_code == 202, response.text
    return wait_for_status(local_cloud, response.json()["jobId"], USER)


def test_merge_makes_a_merge_commit(local_cloud, project):
    project_id, repo = project
    commit_on(repo, "topic", "a.txt", "a\n", start="main")
    job = merge(local_cloud, project_id, source="topic", target="main", strategy="merge")
    assert job["status"] == "SUCCEEDED", job["error"]
    assert job["result"]["commit"] == git(repo, "rev-parse", "main")
    assert len(git(repo, "rev-list", "--parents", "-n", "1", "main").split()) == 3, "a merge commit has two parents"
    assert git(repo, "status", "--porcelain") == ""


def test_ff_only_fast_forwards_and_refuses_diverged_branches(local_cloud, project):
    project_id, repo = project
    tip = commit_on(repo, "ahead", "b.txt", "b\n", start="main")
    assert merge(local_cloud, project_id, source="ahead", target="main", strategy="ff-only")["status"] == "SUCCEEDED"
    assert git(repo, "rev-parse", "main") == tip
    commit_on(repo, "side", "c.txt", "c\n", start="main~1")
    job = merge(local_cloud, project_id, source="side", target="main", strategy="ff-only")
    assert job["status"] == "FAILED" and job["error"]["code"] == "NotFastForward"
    assert git(repo, "rev-parse", "main") == tip


def test_squash_makes_one_commit_with_the_changes(local_cloud, project):
    project_id, repo = project
    commit_on(repo, "many", "d.txt", "d1\n", start="main")
    commit_on(repo, "many", "d.txt", "d2\n")
    before = git(repo, "rev-parse", "main")
    assert merge(local_cloud, project_id, source="many", target="main", strategy="squash")["status"] == "SUCCEEDED"
    assert git(repo, "rev-parse", "main~1") == before
    assert git(repo, "show", "main:d.txt") == "d2"


def test_feature_finish(local_cloud, project):
    project_id, repo = project
    commit_on(repo, "feature/login", "login.txt", "login\n", start="develop")
    job = merge(local_cloud, project_id, flow="feature-finish", name="login")
    assert job["status"] == "SUCCEEDED", job["error"]
    assert git(repo, "show", "develop:login.txt") == "login"
    assert "feature/login" not in git(repo, "branch", "--format=%(refname:short)").split()


@pytest.mark.parametrize(
    ("flow", "prefix", "start"), [("release-finish", "release", "develop"), ("hotfix-finish", "hotfix", "main")]
)
def test_release_and_hotfix_finish_tag_main_and_merge_back(local_cloud, project, flow, prefix, start):
    project_id, repo = project
    commit_on(repo, f"{prefix}/1.2.0", "VERSION", "1.2.0\n", start=start)
    job = merge(local_cloud, project_id, flow=flow, name="1.2.0")
    assert job["status"] == "SUCCEEDED", job["error"]
    assert git(repo, "show", "main:VERSION") == "1.2.0"
    assert git(repo, "rev-parse", "1.2.0^{commit}") == git(repo, "rev-parse", "main")
    assert git(repo, "show", "develop:VERSION") == "1.2.0", "merged back into develop"
    assert f"{prefix}/1.2.0" not in git(repo, "branch", "--format=%(refname:short)").split()


def test_a_conflict_fails_with_its_paths_and_leaves_the_workspace_as_it_was(local_cloud, project):
    project_id, repo = project
    commit_on(repo, "ours", "README.md", "ours\n", start="main")
    commit_on(repo, "theirs", "README.md", "theirs\n", start="main")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "ours")
    before = {b: git(repo, "rev-parse", b) for b in ("main", "theirs", "develop")}
    job = merge(local_cloud, project_id, source="theirs", target="main")
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "MergeConflict"
    assert job["error"]["details"] == [{"path": "README.md", "message": "conflict"}]
    assert git(repo, "status", "--porcelain") == "", "no merge left half done"
    assert {b: git(repo, "rev-parse", b) for b in before} == before


def test_a_release_whose_merge_back_conflicts_is_undone_entirely(local_cloud, project):
    project_id, repo = project
    commit_on(repo, "develop", "VERSION", "dev\n")
    commit_on(repo, "release/2.0", "VERSION", "2.0\n", start="main")
    before = {b: git(repo, "rev-parse", b) for b in ("main", "develop", "release/2.0")}
    job = merge(local_cloud, project_id, flow="release-finish", name="2.0")
    assert job["status"] == "FAILED" and job["error"]["code"] == "MergeConflict"
    assert {b: git(repo, "rev-parse", b) for b in before} == before, "main is put back too"
    assert "2.0" not in git(repo, "tag").split()


def test_bad_merge_requests_are_400(local_cloud, project):
    project_id, _ = project
    for params in ({"source": "--upload-pack=x", "target": "main"}, {"source": "a..b", "target": "main"},
                   {"flow": "feature-finish", "name": "../x"}, {"flow": "feature-finish"},
                   {"source": "a", "target": "b", "flow": "feature-finish", "name": "x"}):  # fmt: skip
        response = http(
            local_cloud, "POST", "/jobs", USER, json={"type": "git-merge", "projectId": project_id, "params": params}
        )
        assert response.status_code == 400, params


def test_finish_and_push_to_the_origin(local_cloud, project, tmp_path):
    project_id, repo = project
    root = tmp_path / "srv"
    root.mkdir()
    make_repository(root, "origin.git", {"README.md": "origin\n"}, branches=("develop",))
    server = GitServer(root)
    try:
        body = {"type": "git-clone", "projectId": project_id, "params": {"repoUrl": f"{server.url}/origin.git"}}
        clone = http(local_cloud, "POST", "/jobs", USER, json=body).json()
        assert wait_for_status(local_cloud, clone["jobId"], USER)["status"] == "SUCCEEDED"
        assert git(repo, "rev-parse", "develop") == git(repo, "rev-parse", "origin/develop"), "cloned as a local branch"
        commit_on(repo, "feature/pushed", "p.txt", "p\n", start="develop")
        job = merge(local_cloud, project_id, flow="feature-finish", name="pushed", push=True)
        assert job["status"] == "SUCCEEDED", job["error"]
        remote_develop = subprocess.run(["git", "--git-dir", str(root / "origin.git"), "rev-parse", "develop"],
                                        capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert remote_develop == git(repo, "rev-parse", "develop")
    finally:
        server.stop()
