"""The git-branch and git-push steps on their own: real git in temporary repositories, AWS in moto.

A workspace is a clone of a bare repository served by :class:`GitServer` on 127.0.0.1 (one of the
deployment's ``GitPrivateHosts`` here), with ``main`` and ``develop`` as git-flow wants them.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from core import locks
from core.config import settings
from core.git_input import GitInputError
from steps.git import branch, flow, push, remote
from steps.git.errors import (
    BranchExists,
    BranchNotFound,
    ForbiddenHost,
    GitFailed,
    NoOrigin,
    PushRejected,
    WorkspaceNotClean,
)
from tests.e2e.test_git_merge import ENV, commit_on, git
from tests.support.git_server import GitServer, make_repository, rev_parse

from .conftest import FakeContext

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


class RoomyContext(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@pytest.fixture
def origin(tmp_path):
    """A git-flow origin (main, develop, one release tag) served over HTTP; (server, bare repository)."""
    root = tmp_path / "srv"
    root.mkdir()
    bare = make_repository(root, "origin.git", {"README.md": "origin\n"}, branches=("develop",), tags=("0.9",))
    make_repository(root, "private.git", {"README.md": "private\n"}, branches=("develop",))
    server = GitServer(root, private={"private.git": ("mona", "s3cret")}, read_only={"mirror.git"})
    shutil.copytree(bare, root / "mirror.git")
    yield server, bare
    server.stop()


@pytest.fixture
def workspace(aws, origin, monkeypatch):
    """The project's workspace: a clone of the origin with develop as a local branch too."""
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    server, _ = origin
    repo = aws.efs / "projects" / "prj-git"
    repo.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", f"{server.url}/origin.git", str(repo)], env=ENV, check=True)
    git(repo, "branch", "develop", "origin/develop")
    return repo


def config_of(repo: Path, key: str) -> str:
    """A key of the workspace's .git/config, "" when unset."""
    done = subprocess.run(["git", "-C", str(repo), "config", "--get-all", key], env=ENV, capture_output=True, text=True)
    return done.stdout.strip()


def run_branch(aws, params: dict) -> dict:
    job_id = f"job-branch-{uuid.uuid4().hex[:8]}"
    job = aws.put_job(job_id, projectId="prj-git", type="git-branch")
    try:
        return branch.handler({**job, "params": params}, RoomyContext())
    finally:
        locks.release("prj-git", job_id)  # the workflow's notify step gives it back


def run_push(aws, params: dict) -> dict:
    job_id = f"job-push-{uuid.uuid4().hex[:8]}"
    job = aws.put_job(job_id, projectId="prj-git", type="git-push")
    try:
        return push.handler({**job, "params": params}, RoomyContext())
    finally:
        locks.release("prj-git", job_id)


def someone_else_pushes(server: GitServer, tmp_path: Path, branch_name: str = "main") -> str:
    """Another clone pushes a commit to the origin's ``branch_name``: the origin moves on."""
    other = tmp_path / f"other-{branch_name.replace('/', '-')}"
    subprocess.run(["git", "clone", "-q", f"{server.url}/origin.git", str(other)], env=ENV, check=True)
    git(other, "checkout", "-q", branch_name)
    (other / "theirs.txt").write_text("theirs\n")
    git(other, "add", "theirs.txt")
    git(other, "commit", "-q", "-m", "theirs")
    git(other, "push", "-q", "origin", branch_name)
    return git(other, "rev-parse", "HEAD")


# ---------------------------------------------------------------- git-branch


def test_a_branch_from_head_is_created_and_checked_out(aws, workspace):
    head = git(workspace, "rev-parse", "HEAD")
    result = run_branch(aws, {"name": "topic"})
    assert result == {"branch": "topic", "commit": head, "from": "HEAD", "checkedOut": True}
    assert git(workspace, "branch", "--show-current") == "topic"
    assert config_of(workspace, "branch.topic.remote") == "", "tracks nothing yet"


@pytest.mark.parametrize(
    ("flow_name", "prefix", "base"),
    [
        ("feature-start", "feature", "develop"),
        ("release-start", "release", "develop"),
        ("hotfix-start", "hotfix", "main"),
    ],
)
def test_git_flow_starts_make_the_branch_from_its_base(aws, workspace, flow_name, prefix, base):
    develop_tip = commit_on(workspace, "develop", "dev.txt", "dev\n")  # develop and main differ
    main_tip = git(workspace, "rev-parse", "main")
    result = run_branch(aws, {"flow": flow_name, "name": "1.0"})
    assert result["branch"] == f"{prefix}/1.0" and result["from"] == base
    assert result["commit"] == (develop_tip if base == "develop" else main_tip)
    assert git(workspace, "rev-parse", f"{prefix}/1.0") == result["commit"]
    assert git(workspace, "branch", "--show-current") == f"{prefix}/1.0"


def test_the_flow_rules_are_the_ones_git_merge_finishes_by():
    for kind in ("feature", "release", "hotfix"):
        assert flow.kind_of(f"{kind}-start") is flow.kind_of(f"{kind}-finish")
    assert (flow.KINDS["feature"].starts_from, flow.KINDS["feature"].finishes_into) == ("develop", "develop")
    assert (flow.KINDS["release"].starts_from, flow.KINDS["release"].finishes_into) == ("develop", "main")
    assert (flow.KINDS["hotfix"].starts_from, flow.KINDS["hotfix"].finishes_into) == ("main", "main")
    with pytest.raises(ValueError):
        flow.kind_of("bugfix-start")


@pytest.mark.parametrize("source", ["tag", "commit", "remote"])
def test_from_a_tag_a_commit_or_a_remote_tracking_branch(aws, workspace, source):
    first = git(workspace, "rev-parse", "0.9^{commit}")
    commit_on(workspace, "main", "later.txt", "later\n")
    base = {"tag": "0.9", "commit": first, "remote": "origin/main"}[source]
    result = run_branch(aws, {"name": f"from-{source}", "from": base})
    assert result["commit"] == first and result["from"] == base


def test_an_existing_branch_is_branch_exists_and_is_not_moved(aws, workspace):
    before = git(workspace, "rev-parse", "develop")
    commit_on(workspace, "main", "m.txt", "m\n")
    with pytest.raises(BranchExists, match="develop"):
        run_branch(aws, {"name": "develop", "from": "main"})
    assert git(workspace, "rev-parse", "develop") == before
    git(workspace, "branch", "feature", "main")  # refs/heads/feature is a file: feature/x cannot be a ref
    with pytest.raises(BranchExists, match="feature"):
        run_branch(aws, {"flow": "feature-start", "name": "x"})


def test_a_missing_base_is_branch_not_found(aws, workspace):
    with pytest.raises(BranchNotFound, match="nope"):
        run_branch(aws, {"name": "x", "from": "nope"})
    git(workspace, "branch", "-D", "develop")
    with pytest.raises(BranchNotFound, match="develop"):
        run_branch(aws, {"flow": "feature-start", "name": "login"})
    assert "feature/login" not in git(workspace, "branch", "--format=%(refname:short)").split()


def test_uncommitted_changes_go_along_unless_the_base_would_overwrite_them(aws, workspace):
    commit_on(workspace, "develop", "README.md", "develop's readme\n")
    (workspace / "notes.txt").write_text("mine\n")  # untracked, in nobody's way
    (workspace / "README.md").write_text("my edit\n")  # main's README, which develop changed
    with pytest.raises(WorkspaceNotClean):
        run_branch(aws, {"flow": "feature-start", "name": "login"})
    assert git(workspace, "branch", "--show-current") == "main"
    assert "feature/login" not in git(workspace, "branch", "--format=%(refname:short)").split()
    assert (workspace / "README.md").read_text() == "my edit\n"
    result = run_branch(aws, {"name": "wip"})  # from HEAD: nothing in the way
    assert result["branch"] == "wip" and (workspace / "README.md").read_text() == "my edit\n"


@pytest.mark.parametrize(
    "params", [{"name": "-f"}, {"name": "x", "from": "--orphan"}, {"flow": "feature-start", "name": "a..b"}]
)
def test_a_hostile_name_that_slipped_past_the_api_is_refused_by_the_step(aws, workspace, params):
    refs = git(workspace, "for-each-ref")
    with pytest.raises(GitInputError):
        run_branch(aws, params)
    assert git(workspace, "for-each-ref") == refs


def test_a_branch_while_another_job_holds_the_project_is_busy(aws, workspace):
    assert locks.acquire("prj-git", "job-holder", "git-merge") is None
    with pytest.raises(locks.ProjectBusy, match="job-holder"):
        run_branch(aws, {"name": "topic"})
    assert "topic" not in git(workspace, "branch", "--format=%(refname:short)").split()


# ---------------------------------------------------------------- git-push


def test_pushes_the_current_branch_by_default_with_old_and_new(aws, workspace, origin):
    _, bare = origin
    old = rev_parse(bare, "refs/heads/main")
    new = commit_on(workspace, "main", "a.txt", "a\n")
    result = run_push(aws, {})
    assert result["branches"] == ["main"] and result["pushedCount"] == 1
    assert result["pushed"] == [{"ref": "refs/heads/main", "old": old, "new": new, "status": "fast-forward"}]
    assert rev_parse(bare, "refs/heads/main") == new
    assert git(workspace, "rev-parse", "origin/main") == new, "the remote-tracking ref follows"


def test_a_new_branch_and_the_tags(aws, workspace, origin):
    _, bare = origin
    result = run_branch(aws, {"flow": "release-start", "name": "1.0"})
    git(workspace, "tag", "-a", "-m", "1.0", "1.0")
    pushed = run_push(aws, {"branches": ["release/1.0", "develop"], "tags": True})
    by_ref = {p["ref"]: p for p in pushed["pushed"]}
    assert by_ref["refs/heads/release/1.0"] == {"ref": "refs/heads/release/1.0", "old": None,
                                                 "new": result["commit"], "status": "new"}  # fmt: skip
    assert by_ref["refs/tags/1.0"]["status"] == "new" and "refs/tags/0.9" not in by_ref, "0.9 was up to date"
    assert pushed["upToDate"] == 2, "develop and the tag 0.9 were there already"
    assert rev_parse(bare, "refs/heads/release/1.0") == result["commit"]
    assert rev_parse(bare, "refs/tags/1.0^{commit}") == result["commit"]


def test_a_non_fast_forward_push_is_rejected_and_the_origin_keeps_its_commit(aws, workspace, origin, tmp_path):
    """No force, ever: the origin moved on, our main diverged, and the origin's commit stays."""
    server, bare = origin
    theirs = someone_else_pushes(server, tmp_path)
    commit_on(workspace, "main", "ours.txt", "ours\n")
    develop = commit_on(workspace, "develop", "d.txt", "d\n")  # would fast-forward on its own
    with pytest.raises(PushRejected) as rejected:
        run_push(aws, {"branches": ["main", "develop"]})
    assert rejected.value.details[0] == {"path": "refs/heads/main", "message": "rejected: fetch first",
                                         "reason": "fetch first"}  # fmt: skip
    # develop is listed too ("atomic push failed") where the transport says so (file://), not over HTTP.
    assert {d["path"] for d in rejected.value.details} <= {"refs/heads/main", "refs/heads/develop"}
    assert rev_parse(bare, "refs/heads/main") == theirs, "not overwritten"
    assert rev_parse(bare, "refs/heads/develop") != develop, "atomic: nothing of the push was taken"


def test_a_planted_force_in_the_workspace_config_is_dropped(aws, workspace, origin, tmp_path):
    """A build may write .git/config: a mirror or a '+' push refspec would force; the step drops them."""
    server, bare = origin
    theirs = someone_else_pushes(server, tmp_path)
    commit_on(workspace, "main", "ours.txt", "ours\n")
    git(workspace, "config", "remote.origin.push", "+refs/heads/*:refs/heads/*")
    git(workspace, "config", "remote.origin.mirror", "true")
    git(workspace, "config", "push.default", "mirror")
    with pytest.raises(PushRejected):
        run_push(aws, {})
    assert rev_parse(bare, "refs/heads/main") == theirs
    assert config_of(workspace, "remote.origin.push") == ""


def test_a_tag_the_origin_has_elsewhere_is_rejected_not_moved(aws, workspace, origin):
    _, bare = origin
    before = rev_parse(bare, "refs/tags/0.9")
    commit_on(workspace, "main", "b.txt", "b\n")
    git(workspace, "tag", "-f", "-a", "-m", "moved", "0.9")
    with pytest.raises(PushRejected) as rejected:
        run_push(aws, {"tags": True})
    assert rejected.value.details[0]["path"] == "refs/tags/0.9"
    assert rejected.value.details[0]["reason"] == "already exists"
    assert rev_parse(bare, "refs/tags/0.9") == before


def test_a_missing_branch_no_origin_and_a_forbidden_host(aws, workspace, monkeypatch):
    with pytest.raises(BranchNotFound, match="nope"):
        run_push(aws, {"branches": ["main", "nope"]})
    url = git(workspace, "remote", "get-url", "origin")
    git(workspace, "remote", "set-url", "origin", "https://localhost/origin.git")
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "")
    settings.cache_clear()
    with pytest.raises(ForbiddenHost):
        run_push(aws, {})
    git(workspace, "remote", "set-url", "origin", url)
    git(workspace, "remote", "remove", "origin")
    with pytest.raises(NoOrigin):
        run_push(aws, {})


def test_a_read_only_origin_fails_git_failed_not_rejected(aws, workspace, origin):
    """The server refused the whole push (403): no ref was judged, so it is GitFailed, which a retry may pass."""
    server, _ = origin
    git(workspace, "remote", "set-url", "origin", f"{server.url}/mirror.git")
    commit_on(workspace, "main", "c.txt", "c\n")
    with pytest.raises(GitFailed):
        run_push(aws, {})


def test_a_private_origin_takes_the_stored_credentials(aws, workspace, origin):
    server, bare = origin
    git(workspace, "remote", "set-url", "origin", f"{server.url}/private.git")
    tip = commit_on(workspace, "feature/p", "p.txt", "p\n", start="main")  # a new branch there
    with pytest.raises(GitFailed):  # no credentials: the server answers 401, git cannot prompt
        run_push(aws, {"branches": ["feature/p"]})
    aws.client("ssm").put_parameter(Name="/longrun/git-credentials/alice/private", Type="SecureString",
                                    Value='{"username": "mona", "password": "s3cret"}')  # fmt: skip
    result = run_push(aws, {"branches": ["feature/p"], "credentials": "private"})
    assert result["pushed"] == [{"ref": "refs/heads/feature/p", "old": None, "new": tip, "status": "new"}]
    assert rev_parse(bare.parent / "private.git", "refs/heads/feature/p") == tip


def test_porcelain_parsing():
    output = "To http://127.0.0.1:1/o.git\n" \
             " \trefs/heads/main:refs/heads/main\tabc1234..def5678\n" \
             "*\trefs/heads/x:refs/heads/x\t[new branch]\n" \
             "=\trefs/tags/0.9:refs/tags/0.9\t[up to date]\n" \
             "!\trefs/heads/dev:refs/heads/dev\t[rejected] (non-fast-forward)\n" \
             "Done\n"  # fmt: skip
    statuses = remote.parse_porcelain(output)
    assert [(s.status, s.ref, s.reason) for s in statuses] == [
        ("fast-forward", "refs/heads/main", "abc1234..def5678"),
        ("new", "refs/heads/x", "new branch"),
        ("up-to-date", "refs/tags/0.9", "up to date"),
        ("rejected", "refs/heads/dev", "non-fast-forward"),
    ]


def test_a_push_names_only_whole_refs():
    with pytest.raises(ValueError, match="no force"):
        remote.push(lambda *a, **k: "", "alice", None, ["+refs/heads/main"])  # type: ignore[arg-type]
