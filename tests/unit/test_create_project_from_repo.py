"""create-project with ``repoUrl``: CloneRepository in place of WriteScaffold and InitRepository, and its undo."""

from __future__ import annotations

import shutil

import pytest

from core import projects
from core.config import settings
from steps.project import clone_repository, record_project, reserve_name, undo
from steps.project.errors import WorkspaceExists
from tests.support.git_server import GitServer, make_repository

from .conftest import USER, FakeContext

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


class RoomyContext(FakeContext):
    def get_remaining_time_in_millis(self) -> int:
        return int((clone_repository.SAFETY_MARGIN_SECONDS + 60) * 1000)


@pytest.fixture
def origin(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_PRIVATE_HOSTS", "127.0.0.1")
    settings.cache_clear()
    root = tmp_path / "srv"
    root.mkdir()
    make_repository(root, "flow.git", {"README.md": "flow\n"}, branches=("develop", "feature/login"))
    server = GitServer(root)
    yield server
    server.stop()


def state_of(aws, origin, job_id: str = "feedfacefeedfacefeedfacefeedface") -> dict:
    params = {"name": "from-repo", "repoUrl": f"{origin.url}/flow.git"}
    project_id = f"prj-{job_id[:16]}"
    aws.put_job(job_id, projectId=project_id, params=params)
    return {"jobId": job_id, "userId": USER, "projectId": project_id, "type": "create-project", "params": params}


def test_the_clone_is_the_workspace_with_every_branch_and_the_record_says_where_it_came_from(aws, origin):
    state = state_of(aws, origin)
    state["reservation"] = reserve_name.handler(state, FakeContext())
    state["repository"] = clone_repository.handler(state, RoomyContext())
    assert state["repository"]["defaultBranch"] == "main"
    assert state["repository"]["branches"] == ["develop", "feature/login", "main"]
    assert (aws.efs / "projects" / state["projectId"] / "README.md").read_text() == "flow\n"
    assert clone_repository.handler(state, RoomyContext()) == state["repository"], "a retry finds its own clone"
    result = record_project.handler(state, FakeContext())
    assert result["defaultBranch"] == "main" and result["s3Prefix"] == f"projects/{state['projectId']}/"
    shown = projects.view(projects.get_owned(state["projectId"], USER))
    assert shown["repoUrl"] == state["params"]["repoUrl"] and shown["template"] is None


def test_undo_removes_this_jobs_clone_and_releases_the_name(aws, origin):
    state = state_of(aws, origin)
    state["reservation"] = reserve_name.handler(state, FakeContext())
    clone_repository.handler(state, RoomyContext())
    done = undo.handler(state, FakeContext())
    assert done["nameReleased"] is True and done["workspaceRemoved"] is True
    assert not (aws.efs / "projects" / state["projectId"]).exists()


def test_a_workspace_that_is_not_this_jobs_is_never_replaced(aws, origin):
    state = state_of(aws, origin)
    workspace = aws.efs / "projects" / state["projectId"]
    workspace.mkdir(parents=True)
    (workspace / "theirs.txt").write_text("keep\n")
    with pytest.raises(WorkspaceExists):
        clone_repository.handler(state, RoomyContext())
    assert undo.handler(state, FakeContext())["workspaceRemoved"] is False
    assert (workspace / "theirs.txt").read_text() == "keep\n"
