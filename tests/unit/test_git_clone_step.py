"""The git-clone step on its own: a clone that runs out of time, or loses its lock, leaves the workspace as it was."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from core import locks
from core.config import settings
from steps.git import clone
from tests.support.git_server import GitServer, make_repository

from .conftest import FakeContext

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


class ShortLivedContext(FakeContext):
    """A Lambda with 2.5 s left once the step's safety margin is taken."""

    def get_remaining_time_in_millis(self) -> int:
        return int((clone.SAFETY_MARGIN_SECONDS + 2.5) * 1000)


class RoomyContext(FakeContext):
    """A Lambda with a minute to spare."""

    def get_remaining_time_in_millis(self) -> int:
        return int((clone.SAFETY_MARGIN_SECONDS + 60) * 1000)


@pytest.fixture
def slow_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    make_repository(root, "slow.git", {"README.md": "slow\n"})
    server = GitServer(root, delay={"slow.git": 4.0})
    yield server
    server.stop()


def test_a_clone_out_of_time_is_repository_too_large_and_the_workspace_is_unchanged(aws, slow_server, monkeypatch):
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    job = aws.put_job("job-slow", projectId="prj-slow", type="git-clone")
    workspace = aws.efs / "projects" / "prj-slow"
    workspace.mkdir(parents=True)
    (workspace / "mine.txt").write_text("keep me\n")
    settings.cache_clear()
    event = {**job, "params": {"repoUrl": f"{slow_server.url}/slow.git"}}
    with pytest.raises(clone.RepositoryTooLarge):
        clone.handler(event, ShortLivedContext())
    assert (workspace / "mine.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in workspace.parent.iterdir()) == ["prj-slow"], "no staging directory left"


def _job_with_workspace(aws, job_id: str, project_id: str) -> tuple[dict, object]:
    job = aws.put_job(job_id, projectId=project_id, type="git-clone")
    workspace = aws.efs / "projects" / project_id
    workspace.mkdir(parents=True)
    (workspace / "mine.txt").write_text("keep me\n")
    return job, workspace


def test_a_job_that_lost_its_lock_mid_clone_leaves_the_workspace_to_the_next_job(aws, slow_server, monkeypatch):
    """Cancelled while git ran: the lock went to the next job, so the finished clone is thrown away."""
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    job, workspace = _job_with_workspace(aws, "job-cancelled", "prj-lost")
    assert locks.acquire("prj-lost", "job-cancelled", "git-clone") is None
    taken_over = threading.Timer(1.0, lambda: (locks.release("prj-lost", "job-cancelled"),
                                                locks.acquire("prj-lost", "job-next", "git-clone")))  # fmt: skip
    taken_over.start()
    with pytest.raises(locks.LockLost):
        clone.handler({**job, "params": {"repoUrl": f"{slow_server.url}/slow.git"}}, RoomyContext())
    taken_over.join()
    assert (workspace / "mine.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in workspace.parent.iterdir()) == ["prj-lost"], "the clone was discarded"


def test_a_clone_started_while_another_job_holds_the_project_is_busy(aws, slow_server, monkeypatch):
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    job, workspace = _job_with_workspace(aws, "job-late", "prj-held")
    assert locks.acquire("prj-held", "job-holder", "git-merge") is None
    with pytest.raises(locks.ProjectBusy, match="job-holder"):
        clone.handler({**job, "params": {"repoUrl": f"{slow_server.url}/slow.git"}}, RoomyContext())
    assert (workspace / "mine.txt").read_text() == "keep me\n"


def test_every_origin_branch_becomes_local_and_tracks_it_but_an_unsafe_name_stays_remote(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    root = tmp_path / "srv"
    root.mkdir()
    bare = make_repository(root, "flow.git", {"README.md": "flow\n"}, branches=("develop", "feature/login"))
    # A name git stores but that would read as an option: it must never reach `git branch` or `checkout`.
    subprocess.run(["git", "--git-dir", str(bare), "update-ref", "refs/heads/-D", "refs/heads/main"], check=True)
    server = GitServer(root)
    try:
        job = aws.put_job("job-flow", projectId="prj-flow", type="git-clone")
        result = clone.handler({**job, "params": {"repoUrl": f"{server.url}/flow.git"}}, RoomyContext())
    finally:
        server.stop()
    assert result["branches"] == ["develop", "feature/login", "main"]
    workspace = aws.efs / "projects" / "prj-flow"
    tracking = subprocess.run(
        ["git", "-C", str(workspace), "for-each-ref", "--format=%(refname:short)>%(upstream)", "refs/heads"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(tracking) == [
        "develop>refs/remotes/origin/develop",
        "feature/login>refs/remotes/origin/feature/login",
        "main>refs/remotes/origin/main",
    ]
