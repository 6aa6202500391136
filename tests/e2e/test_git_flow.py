"""git-flow on a cloned repository, end to end: the issue's "Done when" for git.

A git-flow repository (``main``, ``develop``) is served by :class:`GitServer` on 127.0.0.1 and
cloned into a project. Then, each job through ``POST /jobs`` and its ``job.finished`` over a real
WebSocket subscribed to the project: feature-start, push of the new branch, a colleague's commit on
it, pull, feature-finish, release-start, release-finish; the origin moves on (another colleague),
so the push of main, develop and the tags is refused with ``PushRejected`` and the refs, and the
origin keeps everything it had; a pull merges the origin's develop and the push goes through.

The project's files change only through jobs: the test reads the workspace and the origin's bare
repository to check, and writes only the colleagues' clones, as other people would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import create_project, http, recv_until, ws_connect
from tests.e2e.test_git_merge import ENV, commit_on, git
from tests.support.git_server import GitServer, make_repository, rev_parse

USER = "flo"


class Flow:
    """One project, one origin, one WebSocket subscribed to the project: each job run to its end."""

    def __init__(self, cloud: Any, project_id: str, server: GitServer, bare: Path, root: Path, ws: Any) -> None:
        self.cloud, self.project_id, self.server, self.bare, self.root = cloud, project_id, server, bare, root
        self.workspace = cloud.efs_root() / "projects" / project_id
        self.ws = ws
        self.ws.send(json.dumps({"action": "subscribe", "projectId": project_id}))
        recv_until(self.ws, lambda m: m.get("type") == "subscribed")

    def run(self, job_type: str, **params: Any) -> dict[str, Any]:
        """``POST /jobs``, then the job's ``job.finished`` as the WebSocket pushes it (and the same in REST)."""
        body = {"type": job_type, "projectId": self.project_id, "params": params}
        response = http(self.cloud, "POST", "/jobs", USER, json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["jobId"]
        finished = recv_until(
            self.ws, lambda m: m.get("type") == "job.finished" and m.get("jobId") == job_id, timeout=90
        )[-1]
        stored = http(self.cloud, "GET", f"/jobs/{job_id}", USER).json()
        assert stored["status"] == finished["status"] and stored.get("result") == finished.get("result")
        return finished

    def colleague(self, name: str, branch: str, path: str, text: str) -> str:
        """Someone else clones the origin, commits on ``branch`` and pushes: the origin moves on."""
        clone = self.root / f"colleague-{name}"
        subprocess.run(["git", "clone", "-q", f"{self.server.url}/flow.git", str(clone)], env=ENV, check=True)
        tip = commit_on(clone, branch, path, text)  # git checkout makes the origin's branch local
        git(clone, "push", "-q", "origin", branch)
        assert rev_parse(self.bare, f"refs/heads/{branch}") == tip
        return tip


@pytest.fixture(scope="module")
def flow(local_cloud, tmp_path_factory):
    root = tmp_path_factory.mktemp("git-flow")
    bare = make_repository(root, "flow.git", {"README.md": "flow\n", "VERSION": "0.9\n"}, branches=("develop",))
    server = GitServer(root)
    project_id = create_project(local_cloud, USER)
    try:
        with ws_connect(local_cloud, USER) as ws:
            yield Flow(local_cloud, project_id, server, bare, root, ws)
    finally:
        server.stop()


def ok(finished: dict[str, Any]) -> dict[str, Any]:
    assert finished["status"] == "SUCCEEDED", finished.get("error")
    return finished["result"]


def test_the_git_flow_of_a_cloned_repository(flow: Flow) -> None:
    ws = flow.workspace
    cloned = ok(flow.run("git-clone", repoUrl=f"{flow.server.url}/flow.git"))
    assert {"main", "develop"} <= set(cloned["branches"]), "every origin branch is local"

    # feature-start: feature/login from develop, checked out; pushed so a colleague can work on it.
    started = ok(flow.run("git-branch", flow="feature-start", name="login"))
    assert started["branch"] == "feature/login" and started["commit"] == git(ws, "rev-parse", "develop")
    assert git(ws, "branch", "--show-current") == "feature/login"
    pushed = ok(flow.run("git-push", branches=["feature/login"]))
    assert pushed["pushed"] == [{"ref": "refs/heads/feature/login", "old": None, "new": started["commit"],
                                 "status": "new"}]  # fmt: skip
    again = flow.run("git-branch", flow="feature-start", name="login")
    assert again["status"] == "FAILED" and again["error"]["code"] == "BranchExists"

    # The change arrives as a commit on the origin's feature/login, brought in by a pull.
    login = flow.colleague("ann", "feature/login", "login.txt", "login\n")
    pulled = ok(flow.run("git-pull", branch="feature/login"))
    assert pulled["commit"] == login and pulled["updated"] is True

    # feature-finish: into develop, the feature branch deleted.
    ok(flow.run("git-merge", flow="feature-finish", name="login"))
    assert git(ws, "show", "develop:login.txt") == "login"
    assert "feature/login" not in git(ws, "branch", "--format=%(refname:short)").split()
    assert git(ws, "branch", "--show-current") == "develop", "HEAD was on the finished branch: now on develop"

    # release-start and release-finish: main gets develop's work and the tag, develop gets main back.
    release = ok(flow.run("git-branch", flow="release-start", name="1.0"))
    assert release["branch"] == "release/1.0" and release["commit"] == git(ws, "rev-parse", "develop")
    finished = ok(flow.run("git-merge", flow="release-finish", name="1.0"))
    assert finished["tag"] == "1.0" and git(ws, "show", "main:login.txt") == "login"
    assert git(ws, "rev-parse", "1.0^{commit}") == git(ws, "rev-parse", "main")

    # The origin moved on meanwhile: the push is refused, whole, and nothing on the origin moves.
    origin_main = rev_parse(flow.bare, "refs/heads/main")
    theirs = flow.colleague("bob", "develop", "bob.txt", "bob\n")
    refused = flow.run("git-push", branches=["main", "develop"], tags=True)
    assert refused["status"] == "FAILED" and refused["error"]["code"] == "PushRejected", refused
    assert refused["error"]["details"][0] == {"path": "refs/heads/develop", "message": "rejected: fetch first",
                                              "reason": "fetch first"}  # fmt: skip
    assert rev_parse(flow.bare, "refs/heads/develop") == theirs, "never forced"
    assert rev_parse(flow.bare, "refs/heads/main") == origin_main, "atomic: main did not move either"
    assert rev_parse(flow.bare, "refs/tags/1.0") is None

    # Pull after the origin moved, then the push goes through.
    merged = ok(flow.run("git-pull", branch="develop", strategy="merge"))
    assert merged["updated"] is True and git(ws, "show", "develop:bob.txt") == "bob"
    done = ok(flow.run("git-push", branches=["main", "develop"], tags=True))
    by_ref = {p["ref"]: p for p in done["pushed"]}
    assert by_ref["refs/heads/main"]["old"] == origin_main and by_ref["refs/heads/main"]["status"] == "fast-forward"
    assert by_ref["refs/heads/develop"]["old"] == theirs
    assert by_ref["refs/tags/1.0"]["status"] == "new"
    for ref in ("refs/heads/main", "refs/heads/develop", "refs/tags/1.0"):
        assert rev_parse(flow.bare, ref) == git(ws, "rev-parse", ref), ref
    assert git(ws, "status", "--porcelain") == ""


def test_bad_branch_and_push_requests_are_400_and_a_held_project_is_409(flow: Flow) -> None:
    def post(job_type: str, params: dict[str, Any]) -> Any:
        body = {"type": job_type, "projectId": flow.project_id, "params": params}
        return http(flow.cloud, "POST", "/jobs", USER, json=body)

    for job_type, params, path in (
        ("git-branch", {}, "params.name"),
        ("git-branch", {"flow": "feature-start", "name": "x", "from": "main"}, "params"),
        ("git-branch", {"flow": "bugfix-start", "name": "x"}, "params.flow"),
        ("git-branch", {"name": "--orphan"}, "params.name"),
        ("git-push", {"branches": []}, "params.branches"),
        ("git-push", {"branches": ["main", "-f"]}, "params.branches[1]"),
        ("git-push", {"force": True}, "params.force"),
        ("git-push", {"tags": "yes"}, "params.tags"),
    ):
        refused = post(job_type, params)
        assert refused.status_code == 400, (params, refused.text)
        assert path in [d["path"] for d in refused.json()["error"]["details"]], (params, refused.text)
    shapes = post("git-branch", {"flow": "feature-start", "name": "x", "from": "main"}).json()["error"]["details"]
    assert "a git-flow start: flow and name, no from" in shapes[0]["message"]

    # Another job holds the project: git-branch and git-push wait for nothing, they are refused.
    ddb = flow.cloud.aws_client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if "-ProjectsTable-" in t)
    lock = {"pk": {"S": f"lock#{flow.project_id}"}, "jobId": {"S": "someone-else"}, "expiresAt": {"N": "9999999999"}}
    ddb.put_item(TableName=table, Item=lock)
    try:
        for job_type, params in (("git-branch", {"name": "busy"}), ("git-push", {})):
            busy = post(job_type, params)
            assert busy.status_code == 409 and busy.json()["error"]["code"] == "ProjectBusy", busy.text
            assert busy.json()["error"]["details"][0]["jobId"] == "someone-else"
    finally:
        ddb.delete_item(TableName=table, Key={"pk": lock["pk"]})
