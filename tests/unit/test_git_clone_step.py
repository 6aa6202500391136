"""The git-clone step on its own: a clone that runs out of time leaves the workspace as it was."""

from __future__ import annotations

import shutil

import pytest

from core.config import settings
from steps.git import clone
from tests.support.git_server import GitServer, make_repository

from .conftest import FakeContext

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


class ShortLivedContext(FakeContext):
    """A Lambda with 2.5 s left once the step's safety margin is taken."""

    def get_remaining_time_in_millis(self) -> int:
        return int((clone.SAFETY_MARGIN_SECONDS + 2.5) * 1000)


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
