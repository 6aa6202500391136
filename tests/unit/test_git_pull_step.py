"""The git-pull step on its own, with real git: each strategy, and every refusal leaves the workspace as it was.

The origin is a bare repository served by ``tests/support/git_server.py`` on 127.0.0.1 (a deployment's
``GitPrivateHosts``); the workspace is a clone of it, and the origin moves by commits pushed from a
second clone, as another developer's would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core import git_input, locks
from core.config import settings
from steps.git import pull
from tests.support.git_server import GitServer, make_repository

from .conftest import FakeContext


class RoomyContext(FakeContext):
    """A Lambda with a minute to spare past the step's safety margin."""

    def get_remaining_time_in_millis(self) -> int:
        return int((pull.SAFETY_MARGIN_SECONDS + 60) * 1000)


pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

ENV = {
    "PATH": os.environ["PATH"],
    "HOME": "/tmp",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "p",
    "GIT_AUTHOR_EMAIL": "p@example.com",
    "GIT_COMMITTER_NAME": "p",
    "GIT_COMMITTER_EMAIL": "p@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo: Path, path: str, text: str, branch: str = "main") -> str:
    git(repo, "checkout", "-q", branch)
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", f"{path} on {branch}")
    return git(repo, "rev-parse", "HEAD")


def snapshot(repo: Path) -> dict[str, object]:
    """What a user sees of a workspace: HEAD, every local branch, status, and every file's bytes."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "on": git(repo, "symbolic-ref", "--quiet", "--short", "HEAD"),
        "branches": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "files": files,
        "in progress": sorted(p.name for p in (repo / ".git").iterdir() if p.name in ("MERGE_HEAD", "rebase-merge")),
    }


@pytest.fixture
def origin(aws, tmp_path, monkeypatch):
    """(server, bare origin, the project's workspace cloned from it, a second clone that pushes)."""
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    root = tmp_path / "srv"
    root.mkdir()
    bare = make_repository(root, "app.git", {"README.md": "app\n", "notes.txt": "one\n"}, branches=("develop",))
    server = GitServer(root)
    workspace = aws.efs / "projects" / "prj-pull"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", f"{server.url}/app.git", str(workspace)], env=ENV, check=True)
    git(workspace, "branch", "--track", "develop", "origin/develop")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(bare), str(other)], env=ENV, check=True)
    yield server, bare, workspace, other
    server.stop()


def run(aws, strategy: str | None = None, **params) -> dict:
    job = aws.put_job(f"job-{os.urandom(4).hex()}", projectId="prj-pull", type="git-pull")
    try:
        return pull.handler({**job, "params": {"strategy": strategy or "ff-only", **params}}, RoomyContext())
    finally:
        locks.release("prj-pull", job["jobId"])  # what the machine's notify step does on every exit


def test_a_fast_forward_brings_the_branch_and_files_up_to_date_then_nothing_changes(aws, origin):
    _, _, workspace, other = origin
    tip = commit(other, "notes.txt", "two\n")
    git(other, "push", "-q", "origin", "main")
    result = run(aws)
    assert result == {"commit": tip, "branch": "main", "updated": True, "strategy": "ff-only"}
    assert (workspace / "notes.txt").read_text() == "two\n" and git(workspace, "status", "--porcelain") == ""
    assert run(aws)["updated"] is False


def test_a_branch_not_checked_out_moves_without_touching_the_files(aws, origin):
    _, _, workspace, other = origin
    tip = commit(other, "dev.txt", "dev\n", branch="develop")
    git(other, "push", "-q", "origin", "develop")
    result = run(aws, branch="develop")
    assert result["commit"] == tip and result["updated"] is True
    assert git(workspace, "rev-parse", "develop") == tip
    assert git(workspace, "symbolic-ref", "--short", "HEAD") == "main" and not (workspace / "dev.txt").exists()


def test_diverged_ff_only_is_not_fast_forward_and_the_workspace_is_unchanged(aws, origin):
    _, _, workspace, other = origin
    commit(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", "main")
    commit(workspace, "mine.txt", "mine\n")
    before = snapshot(workspace)
    with pytest.raises(pull.NotFastForward):
        run(aws)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("strategy", ["merge", "rebase"])
def test_a_conflict_is_merge_conflict_with_its_paths_and_the_workspace_is_unchanged(aws, origin, strategy):
    _, _, workspace, other = origin
    commit(other, "notes.txt", "theirs\n")
    git(other, "push", "-q", "origin", "main")
    commit(workspace, "notes.txt", "mine\n")
    (workspace / "scratch.txt").write_text("untracked, kept\n")
    before = snapshot(workspace)
    with pytest.raises(pull.MergeConflict) as raised:
        run(aws, strategy)
    assert raised.value.details == [{"path": "notes.txt", "message": "conflict"}]
    assert snapshot(workspace) == before


def test_merge_makes_a_merge_commit_and_rebase_replays_the_local_commits(aws, origin):
    _, _, workspace, other = origin
    theirs = commit(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", "main")
    commit(workspace, "mine.txt", "mine\n")
    merged = run(aws, "merge")
    assert merged["updated"] and git(workspace, "rev-parse", "HEAD^2") == theirs, (
        "a merge commit: origin is its second parent"
    )
    git(workspace, "reset", "-q", "--hard", "HEAD^1")
    rebased = run(aws, "rebase")
    assert git(workspace, "rev-parse", "HEAD^") == theirs, "the local commit sits on the origin's now"
    assert git(workspace, "rev-list", "--merges", "--count", "HEAD") == "0"
    assert (workspace / "mine.txt").exists() and (workspace / "theirs.txt").exists()
    assert rebased["commit"] == git(workspace, "rev-parse", "HEAD")


def test_uncommitted_changes_are_refused_before_any_fetch(aws, origin):
    server, _, workspace, _ = origin
    (workspace / "notes.txt").write_text("edited\n")
    seen = len(server.requests)
    with pytest.raises(pull.WorkspaceNotClean):
        run(aws)
    assert len(server.requests) == seen and (workspace / "notes.txt").read_text() == "edited\n"


def test_a_workspace_without_an_origin_is_no_origin(aws, origin):
    _, _, workspace, _ = origin
    git(workspace, "remote", "remove", "origin")
    with pytest.raises(pull.NoOrigin):
        run(aws)


def test_a_branch_missing_here_or_at_the_origin_is_branch_not_found(aws, origin):
    _, _, workspace, _ = origin
    with pytest.raises(pull.BranchNotFound, match="no branch nope"):
        run(aws, branch="nope")
    git(workspace, "branch", "local-only")
    with pytest.raises(pull.BranchNotFound, match="origin has no branch local-only"):
        run(aws, branch="local-only")


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "file:///etc", "https://169.254.169.254/x.git", "http://example.com/r.git"]
)
def test_an_origin_a_build_rewrote_to_a_hostile_url_is_refused_before_git_reaches_it(aws, origin, url):
    """A build can write .git/config: the step holds the origin to git-clone's rules again."""
    _, _, workspace, _ = origin
    git(workspace, "config", "remote.origin.url", url)
    with pytest.raises(git_input.GitInputError) as raised:
        run(aws)
    assert raised.value.path == "origin"


def test_a_fetch_refspec_a_build_planted_cannot_move_local_branches(aws, origin):
    _, _, workspace, other = origin
    mine = commit(workspace, "mine.txt", "mine\n")
    git(workspace, "config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*")
    commit(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", "main")
    with pytest.raises(pull.NotFastForward):
        run(aws)
    assert git(workspace, "rev-parse", "main") == mine
