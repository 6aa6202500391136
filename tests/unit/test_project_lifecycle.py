"""The project lifecycle: ``GET /projects`` paging, ``DELETE /projects/{id}`` and the delete-project steps.

The steps run in the order ``statemachines/delete_project.asl.json`` runs them, with its
ResultPaths and its Choice loops, against moto; a turn's time budget is made to end by patching
the steps' clock and the page size, never by sleeping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from api import cursor
from core import locks, projects
from steps.lifecycle import mark, objects, records, turns, workspace
from steps.lifecycle.errors import ProjectNotFound
from steps.project.workspace import workspace_dir

from .conftest import OTHER, USER, FakeContext
from .test_api import assert_error, call, put_project

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def add_project(env: Any, project_id: str, user: str = USER, created: str = "2025-01-01T00:00:00.000Z",
                name: str | None = None) -> None:  # fmt: skip
    """A project record as RecordProject writes it, and its name reservation."""
    name = name or project_id
    env.table("PROJECTS_TABLE").put_item(
        Item={
            **projects.project_key(project_id),
            "projectId": project_id,
            "userId": user,
            "name": name,
            "template": "web-app",
            "s3Prefix": f"projects/{project_id}/",
            "workspace": f"/projects/{project_id}",
            "defaultBranch": "main",
            "createdAt": created,
            projects.LISTED_AT: created,
            "jobId": "job-1",
        }
    )
    env.table("PROJECTS_TABLE").put_item(
        Item={**projects.name_key(user, name), "userId": user, "projectId": project_id, "jobId": "job-1"}
    )


# --- GET /projects -------------------------------------------------------------------------------


def test_the_list_pages_through_the_callers_projects_only_newest_first(aws):
    for i in range(5):
        add_project(aws, f"prj-a{i}", USER, f"2025-01-0{i + 1}T00:00:00.000Z")
    for i in range(3):
        add_project(aws, f"prj-b{i}", OTHER, f"2025-02-0{i + 1}T00:00:00.000Z")
    aws.table("PROJECTS_TABLE").put_item(Item={"pk": "syncreq#prj-a0", "userId": USER, "createdAt": 1})
    seen, token = [], None
    for _ in range(5):
        answer = call("GET", "/projects", query={"limit": "2", **({"cursor": token} if token else {})})
        assert answer.status == 200, answer.body
        assert len(answer.body["items"]) <= 2
        seen += [p["projectId"] for p in answer.body["items"]]
        token = answer.body["nextCursor"]
        if token is None:
            break
    assert seen == ["prj-a4", "prj-a3", "prj-a2", "prj-a1", "prj-a0"]
    first = call("GET", "/projects").body["items"][0]
    assert first["status"] == "active" and first["name"] == "prj-a4" and "userId" not in first
    assert [p["projectId"] for p in call("GET", "/projects", user=OTHER).body["items"]] == [
        "prj-b2",
        "prj-b1",
        "prj-b0",
    ]


def test_a_cursor_of_another_user_or_listing_is_refused(aws):
    for i in range(3):
        add_project(aws, f"prj-a{i}", USER, f"2025-01-0{i + 1}T00:00:00.000Z")
    token = call("GET", "/projects", query={"limit": "1"}).body["nextCursor"]
    assert token
    error = assert_error(call("GET", "/projects", user=OTHER, query={"cursor": token}), 400, "ValidationError")
    assert error["details"][0]["path"] == "query.cursor"
    jobs_cursor = cursor.encode({"jobId": "j", "createdAt": "2025", "userId": USER})
    assert_error(call("GET", "/projects", query={"cursor": jobs_cursor}), 400, "ValidationError")
    other_key = cursor.encode({"pk": "name#alice#x", "userId": USER, projects.LISTED_AT: "2025"})
    assert_error(call("GET", "/projects", query={"cursor": other_key}), 400, "ValidationError")
    assert_error(call("GET", "/projects", query={"cursor": "%%%"}), 400, "ValidationError")
    # and a projects cursor is no jobs cursor
    assert_error(call("GET", "/jobs", query={"cursor": token}), 400, "ValidationError")


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "²", "1000"])
def test_the_list_limit_must_be_1_to_100(aws, limit):
    error = assert_error(call("GET", "/projects", query={"limit": limit}), 400, "ValidationError")
    assert error["details"] == [{"path": "query.limit", "message": "an integer from 1 to 100"}]


@pytest.mark.parametrize("limit", ["1", "100"])
def test_the_list_limit_bounds_are_accepted(aws, limit):
    assert call("GET", "/projects", query={"limit": limit}).status == 200


def test_an_empty_list(aws):
    assert call("GET", "/projects").body == {"items": [], "nextCursor": None}


# --- DELETE /projects/{projectId} -----------------------------------------------------------------


def delete_executions(env: Any) -> list[dict[str, Any]]:
    machine = env.env["STATE_MACHINE_ARN_PREFIX"] + "delete-project"
    return env.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]


def test_delete_starts_a_delete_project_job_with_the_lock(aws):
    add_project(aws, "prj-mine")
    answer = call("DELETE", "/projects/prj-mine")
    assert answer.status == 202, answer.body
    job_id = answer.body["jobId"]
    assert answer.headers["Location"].endswith(f"/jobs/{job_id}")  # as POST /jobs answers (api.mapping)
    assert answer.body["type"] == "delete-project" and answer.body["projectId"] == "prj-mine"
    assert answer.body["status"] == "RUNNING" and answer.body["links"]["self"].endswith(f"/jobs/{job_id}")
    assert [e["executionArn"] for e in delete_executions(aws)] == [answer.body["executionArn"]]
    lock = aws.table("PROJECTS_TABLE").get_item(Key={"pk": "lock#prj-mine"})["Item"]
    assert lock["jobId"] == job_id and lock["type"] == "delete-project"
    assert call("GET", f"/jobs/{job_id}").body["type"] == "delete-project"


def test_post_jobs_starts_the_same_job_and_refuses_params(aws):
    add_project(aws, "prj-mine")
    error = assert_error(
        call("POST", "/jobs", body={"type": "delete-project", "projectId": "prj-mine", "params": {"force": True}}),
        400,
        "ValidationError",
    )
    assert error["details"][0]["path"] == "params.force"
    assert_error(call("POST", "/jobs", body={"type": "delete-project", "params": {}}), 400, "ValidationError")
    answer = call("POST", "/jobs", body={"type": "delete-project", "projectId": "prj-mine"})
    assert answer.status == 202 and answer.body["type"] == "delete-project"


def test_delete_while_another_job_holds_the_project_is_busy(aws):
    add_project(aws, "prj-mine")
    assert locks.acquire("prj-mine", "git-job-1", "git-merge") is None
    error = assert_error(call("DELETE", "/projects/prj-mine"), 409, "ProjectBusy")
    assert error["details"][0]["jobId"] == "git-job-1"
    assert delete_executions(aws) == []


def test_another_users_project_cannot_be_deleted(aws):
    add_project(aws, "prj-theirs", OTHER)
    assert_error(call("DELETE", "/projects/prj-theirs"), 404, "NotFound")
    assert_error(call("DELETE", "/projects/prj-nothing"), 404, "NotFound")
    assert_error(call("DELETE", "/projects/bad%20id"), 404, "NotFound")
    assert delete_executions(aws) == []
    assert aws.table("PROJECTS_TABLE").get_item(Key={"pk": "lock#prj-theirs"}).get("Item") is None


# --- the steps ------------------------------------------------------------------------------------


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The steps' clock moves 1 s at each look: a turn of TURN_SECONDS ends after that many looks."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(turns, "clock", tick)
    monkeypatch.setattr(turns, "TURN_SECONDS", 3)
    monkeypatch.setattr(turns.Turn.__init__, "__defaults__", (3,))
    return now


def state_for(env: Any, project_id: str, job_id: str = "d" * 32, user: str = USER) -> dict[str, Any]:
    env.put_job(job_id, user=user, type="delete-project", projectId=project_id, params={})
    assert locks.acquire(project_id, job_id, "delete-project") is None  # as the API does
    return {"jobId": job_id, "userId": user, "projectId": project_id, "type": "delete-project", "params": {}}


def seed_files(env: Any, project_id: str, count: int) -> None:
    """``count`` files under the prefix, each with two versions, and one deleted file (a delete marker)."""
    s3 = env.client("s3")
    for i in range(count):
        for body in (b"one", b"two"):
            s3.put_object(Bucket=env.bucket, Key=f"projects/{project_id}/src/f{i}.txt", Body=body)
    s3.put_object(Bucket=env.bucket, Key=f"projects/{project_id}/gone.txt", Body=b"x")
    s3.delete_object(Bucket=env.bucket, Key=f"projects/{project_id}/gone.txt")


def seed_workspace(project_id: str, files: int, outside: Path) -> Path:
    root = workspace_dir(project_id)
    (root / "a" / "b").mkdir(parents=True)
    for i in range(files):
        (root / ("a/b" if i % 2 else "a") / f"f{i}").write_text("x")
    (root / "link-out").symlink_to(outside)  # a user's symlink: removed, never followed
    (root / "a" / "dir-link").symlink_to(outside, target_is_directory=True)
    readonly = root / "ro"
    readonly.mkdir()
    (readonly / "kept").write_text("x")
    readonly.chmod(0o500)
    return root


def versions_under(env: Any, prefix: str) -> int:
    listed = env.client("s3").list_object_versions(Bucket=env.bucket, Prefix=prefix)
    return len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))


def run_delete(state: dict[str, Any]) -> dict[str, Any]:
    """The machine's path: MarkDeleting, the DeleteObjects loop, the RemoveWorkspace loop, RemoveRecords."""
    ctx = FakeContext()
    state["project"] = mark.handler(state, ctx)
    state["objects"] = objects.handler(state, ctx)
    while not state["objects"]["done"]:
        state["objects"] = objects.handler(state, ctx)
    state["workspace"] = workspace.handler(state, ctx)
    while not state["workspace"]["done"]:
        state["workspace"] = workspace.handler(state, ctx)
    state["result"] = records.handler(state, ctx)
    return state


def test_the_steps_delete_everything_of_the_project_in_bounded_turns(aws, monkeypatch, fast_clock, tmp_path):
    monkeypatch.setattr(objects, "PAGE_KEYS", 2)
    add_project(aws, "prj-doomed", name="my-app")
    add_project(aws, "prj-kept", name="other")
    seed_files(aws, "prj-doomed", 5)
    seed_files(aws, "prj-kept", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    seed_workspace("prj-doomed", 7, outside)
    (workspace_dir("prj-kept")).mkdir(parents=True)
    state = run_delete(state_for(aws, "prj-doomed"))

    # bounded: pages of at most 2 versions, and turns that end on the clock, so several of each
    assert state["objects"]["turns"] > 1 and state["workspace"]["turns"] > 1
    assert state["objects"]["objects"] == 5  # the files (current versions); gone.txt was deleted before
    assert state["objects"]["versions"] == 5 * 2 + 2  # every version and the delete marker too
    assert state["result"] == {"deleted": {"objects": 5, "files": 7 + 2 + 1}}
    # gone: every version of the prefix, the workspace, the record, the name, the lock
    assert versions_under(aws, "projects/prj-doomed/") == 0
    assert not workspace_dir("prj-doomed").exists() and not workspace.trash_dir("prj-doomed").exists()
    table = aws.table("PROJECTS_TABLE")
    for key in ("project#prj-doomed", f"name#{USER}#my-app", "lock#prj-doomed", "syncreq#prj-doomed"):
        assert table.get_item(Key={"pk": key}).get("Item") is None, key
    assert_error(call("GET", "/projects/prj-doomed"), 404, "NotFound")
    # another project, and what a symlink pointed at, untouched
    assert versions_under(aws, "projects/prj-kept/") == 1 * 2 + 2
    assert workspace_dir("prj-kept").is_dir() and (outside / "precious").read_text() == "keep me"
    assert call("GET", "/projects/prj-kept").status == 200
    # the job's history stays readable
    assert call("GET", f"/jobs/{state['jobId']}").status == 200
    assert [j["jobId"] for j in call("GET", "/jobs", query={"projectId": "prj-doomed"}).body["items"]] == [
        state["jobId"]
    ]


def test_a_turn_stops_on_its_time_budget_and_the_next_goes_on(aws, monkeypatch, fast_clock):
    monkeypatch.setattr(objects, "PAGE_KEYS", 1)
    add_project(aws, "prj-big")
    seed_files(aws, "prj-big", 4)  # 10 versions: 10 pages of one
    state = state_for(aws, "prj-big")
    state["project"] = mark.handler(state, FakeContext())
    first = objects.handler(state, FakeContext())
    # Turn() looks once, then once per page: a 3 s budget at 1 s a look is 2 pages.
    assert first == {"objects": first["objects"], "versions": 2, "turns": 1, "done": False}
    assert versions_under(aws, "projects/prj-big/") == 8
    state["objects"] = first
    second = objects.handler(state, FakeContext())
    assert second["versions"] == 4 and second["turns"] == 2 and not second["done"]


def test_the_mark_makes_the_project_deleting_and_refuses_new_jobs(aws):
    add_project(aws, "prj-mine")
    state = state_for(aws, "prj-mine")
    assert mark.handler(state, FakeContext()) == {"name": "prj-mine"}
    shown = call("GET", "/projects/prj-mine").body
    assert shown["status"] == "deleting"
    error = assert_error(
        call("POST", "/jobs", body={"type": "sync", "projectId": "prj-mine", "params": {"direction": "s3-to-efs"}}),
        409,
        "ProjectBusy",
    )
    assert error["details"][0]["jobId"] == state["jobId"]
    upload = call("POST", "/projects/prj-mine/uploads", body={"path": "a.txt"})
    assert_error(upload, 409, "ProjectBusy")
    download = call("POST", "/projects/prj-mine/downloads", body={"path": "a.txt"})
    assert_error(download, 409, "ProjectBusy")
    # A failed delete left it deleting: the lock is free again, and a new DELETE may try again.
    locks.release("prj-mine", state["jobId"])
    assert call("DELETE", "/projects/prj-mine").status == 202


def test_the_mark_refuses_a_project_that_is_gone_or_not_the_users(aws):
    add_project(aws, "prj-theirs", OTHER)
    with pytest.raises(ProjectNotFound):
        mark.handler(state_for(aws, "prj-theirs", user=USER), FakeContext())
    assert call("GET", "/projects/prj-theirs", user=OTHER).body["status"] == "active"
    with pytest.raises(ProjectNotFound):
        mark.handler(state_for(aws, "prj-never", job_id="e" * 32), FakeContext())


def test_the_name_can_be_used_again_once_deleted(aws):
    add_project(aws, "prj-old", name="my-app")
    assert_error(call("POST", "/jobs", body={"type": "create-project", "params": {"name": "my-app"}}), 409, "Conflict")
    run_delete(state_for(aws, "prj-old"))
    answer = call("POST", "/jobs", body={"type": "create-project", "params": {"name": "my-app"}})
    assert answer.status == 202, answer.body


def test_the_name_of_a_newer_project_is_never_released(aws):
    """A name reservation that names another project (made after this one's was released) stays."""
    add_project(aws, "prj-old", name="my-app")
    state = state_for(aws, "prj-old")
    state["project"] = mark.handler(state, FakeContext())
    aws.table("PROJECTS_TABLE").put_item(
        Item={**projects.name_key(USER, "my-app"), "userId": USER, "projectId": "prj-new", "jobId": "j2"}
    )
    state["objects"] = {"objects": 0, "versions": 0, "turns": 1, "done": True}
    state["workspace"] = {"files": 0, "turns": 1, "done": True}
    records.handler(state, FakeContext())
    assert projects.name_reservation(USER, "my-app")["projectId"] == "prj-new"


def test_every_step_can_run_again_after_a_failure(aws, monkeypatch, fast_clock, tmp_path):
    """A retried or redriven state runs with the input it had: each step goes on with what is left."""
    add_project(aws, "prj-again")
    seed_files(aws, "prj-again", 2)
    seed_workspace("prj-again", 3, tmp_path)
    state = run_delete(state_for(aws, "prj-again"))
    again = dict(state)
    assert locks.acquire("prj-again", state["jobId"], "delete-project") is None  # a retry takes it again
    assert objects.handler(again, FakeContext())["done"]
    assert workspace.handler(again, FakeContext())["done"]
    assert records.handler(again, FakeContext()) == state["result"]
    assert versions_under(aws, "projects/prj-again/") == 0 and not workspace_dir("prj-again").exists()


def test_a_cancelled_delete_stops_at_its_next_turn(aws):
    add_project(aws, "prj-mine")
    state = state_for(aws, "prj-mine")
    state["project"] = mark.handler(state, FakeContext())
    locks.release("prj-mine", state["jobId"])  # DELETE /jobs/{id} gave the lock back
    with pytest.raises(locks.LockLost):
        objects.handler(state, FakeContext())
    with pytest.raises(locks.LockLost):
        records.handler({**state, "objects": {"objects": 0}, "workspace": {"files": 0}}, FakeContext())
    assert call("GET", "/projects/prj-mine").body["status"] == "deleting"


def test_legacy_records_without_the_index_key_still_resolve_but_are_not_listed(aws):
    put_project(aws, "prj-legacy", USER)  # written before projectCreatedAt existed
    assert call("GET", "/projects/prj-legacy").status == 200
    assert call("GET", "/projects").body["items"] == []


@pytest.fixture(autouse=True)
def _writable_workspaces(aws):
    """Read-only directories a test made are removed by the test itself, or here."""
    yield
    for root, dirs, _ in os.walk(aws.efs):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
    shutil.rmtree(aws.efs / "projects", ignore_errors=True)


def test_a_sync_queued_behind_the_delete_finds_the_project_gone(aws):
    """A sync an upload started waits for the lock; when the delete gives it up, the project is gone."""
    from steps.sync import acquire
    from steps.sync.errors import ProjectGone

    add_project(aws, "prj-mine")
    state = state_for(aws, "prj-mine")
    state["project"] = mark.handler(state, FakeContext())
    sync = {"jobId": "s" * 32, "userId": USER, "projectId": "prj-mine", "type": "sync", "params": {}}
    aws.put_job(sync["jobId"], type="sync", projectId="prj-mine", params={})
    assert acquire.handler(sync, FakeContext())["acquired"] is False  # queued behind the delete
    locks.release("prj-mine", state["jobId"])  # a delete that failed midway gave the lock back
    with pytest.raises(ProjectGone):
        acquire.handler(sync, FakeContext())  # the project is still deleting
    aws.table("PROJECTS_TABLE").delete_item(Key=projects.project_key("prj-mine"))
    with pytest.raises(ProjectGone):
        acquire.handler(sync, FakeContext())  # and once it is gone
    assert not workspace_dir("prj-mine").exists()
