"""The create-project steps, run in the order the state machine runs them, with the input it passes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from core import jobs, projects
from steps.notify import notify
from steps.project import init_repository, record_project, reserve_name, scaffold, undo, write_scaffold
from steps.project.errors import NameTaken, ScaffoldNotFound

from .conftest import USER, FakeContext

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

SCAFFOLD = Path(scaffold.__file__).parent / "scaffolds" / "web-app"
SCAFFOLD_FILES = sorted(p.relative_to(SCAFFOLD).as_posix() for p in SCAFFOLD.rglob("*") if p.is_file())


def state_of(env: Any, job_id: str = "0123456789abcdef0123456789abcdef", name: str = "my-app", **params: Any) -> dict:
    """The job as the API wrote it, and the state machine's input for it."""
    project_id = f"prj-{job_id[:16]}"
    env.put_job(job_id, projectId=project_id, params={"name": name, "template": "web-app", **params})
    return {
        "jobId": job_id,
        "userId": USER,
        "projectId": project_id,
        "type": "create-project",
        "params": {"name": name, "template": "web-app", **params},
    }


def run_steps(state: dict[str, Any], until: str = "record") -> dict[str, Any]:
    """Each step with its ResultPath, as in statemachines/create_project.asl.json."""
    ctx = FakeContext()
    state["reservation"] = reserve_name.handler(state, ctx)
    if until == "reserve":
        return state
    state["scaffold"] = write_scaffold.handler(state, ctx)
    if until == "scaffold":
        return state
    state["repository"] = init_repository.handler(state, ctx)
    if until == "repository":
        return state
    state["result"] = record_project.handler(state, ctx)
    return state


def keys_under(env: Any, prefix: str) -> list[str]:
    listed = env.client("s3").list_objects_v2(Bucket=env.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_create_project_happy_path(aws):
    state = run_steps(state_of(aws))
    project_id = state["projectId"]

    # reserve-name
    assert state["reservation"] == {"name": "my-app"}
    reservation = projects.name_reservation(USER, "my-app")
    assert reservation["projectId"] == project_id and reservation["jobId"] == state["jobId"]

    # write-scaffold: the template's files under the project's prefix, its name filled in
    prefix = f"projects/{project_id}/"
    assert state["scaffold"] == {"s3Prefix": prefix, "files": len(SCAFFOLD_FILES)}
    assert keys_under(aws, prefix) == [prefix + f for f in SCAFFOLD_FILES]
    readme = aws.client("s3").get_object(Bucket=aws.bucket, Key=prefix + "README.md")
    text = readme["Body"].read().decode()
    assert "my-app" in text and "{{name}}" not in text
    assert readme["ContentType"] == "text/markdown"

    # init-repository: main and develop, one commit holding every file
    repo = aws.efs / "projects" / project_id
    repository = state["repository"]
    assert repository["workspace"] == f"/projects/{project_id}"
    assert repository["defaultBranch"] == "main"
    assert sorted(repository["branches"]) == ["develop", "main"]
    assert (repo / ".git").is_dir()
    assert git(repo, "rev-list", "--count", "--all") == "1"
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", "develop") == repository["commit"]
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert sorted(git(repo, "ls-tree", "-r", "--name-only", "main").splitlines()) == SCAFFOLD_FILES
    assert git(repo, "status", "--porcelain") == ""
    assert [p.name for p in (aws.efs / "projects").iterdir()] == [project_id]  # no staging left behind

    # record-project
    assert state["result"] == {
        "projectId": project_id,
        "s3Prefix": prefix,
        "workspace": f"/projects/{project_id}",
        "defaultBranch": "main",
    }
    project = projects.get_owned(project_id, USER)
    assert projects.view(project) | {"createdAt": None} == {
        "projectId": project_id,
        "name": "my-app",
        "template": "web-app",
        "repoUrl": None,
        "s3Prefix": prefix,
        "workspace": f"/projects/{project_id}",
        "defaultBranch": "main",
        "createdAt": None,
        "jobId": state["jobId"],
        "status": "active",
    }

    # every step reported STARTED then SUCCEEDED, in one gap-free sequence
    events = aws.events(state["jobId"])
    assert [e["seq"] for e in events] == list(range(1, 9))
    assert [(e["step"], e["status"]) for e in events] == [
        (step, status)
        for step in ("reserve-name", "write-scaffold", "init-repository", "record-project")
        for status in ("STARTED", "SUCCEEDED")
    ]
    job = jobs.get(state["jobId"])
    assert {name: s["status"] for name, s in job["steps"].items()} == {
        "reserve-name": "SUCCEEDED",
        "write-scaffold": "SUCCEEDED",
        "init-repository": "SUCCEEDED",
        "record-project": "SUCCEEDED",
    }

    # notify (NotifySuccess's Parameters)
    answer = notify.handler({"jobId": state["jobId"], "status": "SUCCEEDED", "result": state["result"]}, FakeContext())
    assert answer == {"jobId": state["jobId"], "status": "SUCCEEDED", "closed": True}
    job = jobs.get(state["jobId"])
    assert job["status"] == "SUCCEEDED" and job["result"] == state["result"]
    finished = aws.events(state["jobId"])[-1]
    assert finished["type"] == "job.finished" and finished["seq"] == 9 and finished["result"] == state["result"]


def test_steps_are_safe_to_retry(aws):
    """Lambda retries (the state machine's Retry) run a step again with the same input."""
    state = run_steps(state_of(aws), until="repository")
    first = state["repository"]
    assert reserve_name.handler(state, FakeContext()) == {"name": "my-app"}
    assert write_scaffold.handler(state, FakeContext())["files"] == len(SCAFFOLD_FILES)
    assert init_repository.handler(state, FakeContext()) == first


def test_undo_removes_everything_and_is_safe_twice(aws):
    state = run_steps(state_of(aws))
    project_id, job_id = state["projectId"], state["jobId"]
    repo = aws.efs / "projects" / project_id

    first = undo.handler(state, FakeContext())

    assert first == {"nameReleased": True, "objectsDeleted": len(SCAFFOLD_FILES), "workspaceRemoved": True}
    assert projects.name_reservation(USER, "my-app") is None
    assert projects.get_owned(project_id, USER) is None
    assert keys_under(aws, f"projects/{project_id}/") == []
    versions = boto3.client("s3").list_object_versions(Bucket=aws.bucket, Prefix=f"projects/{project_id}/")
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == [], "no version is left behind"
    assert not repo.exists()

    second = undo.handler(state, FakeContext())
    assert second == {"nameReleased": False, "objectsDeleted": 0, "workspaceRemoved": False}

    # NotifyFailure after the undo
    error = {"Error": "GitFailed", "Cause": json.dumps({"errorMessage": "git commit failed", "errorType": "GitFailed"})}
    answer = notify.handler({"jobId": job_id, "status": "FAILED", "error": error}, FakeContext())
    assert answer["closed"] is True
    job = jobs.get(job_id)
    assert job["status"] == "FAILED"
    assert job["error"] == {"code": "GitFailed", "message": "git commit failed"}
    assert job["steps"]["undo"]["status"] == "SUCCEEDED"


def test_undo_of_a_job_that_failed_early_is_harmless(aws):
    state = state_of(aws)  # failed before anything was made
    assert undo.handler(state, FakeContext()) == {"nameReleased": False, "objectsDeleted": 0, "workspaceRemoved": False}


def test_undo_leaves_another_jobs_project_alone(aws):
    winner = run_steps(state_of(aws, job_id="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
    loser = state_of(aws, job_id="bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
    # The job that lost the name race releases nothing of the winner's.
    result = undo.handler(loser, FakeContext())
    assert result["nameReleased"] is False
    assert projects.name_reservation(USER, "my-app")["jobId"] == winner["jobId"]
    # Even handed the winner's project id, it keeps the winner's repository and record
    # (only the S3 prefix is not guarded: project ids are minted per job by the API).
    intruder = {**loser, "projectId": winner["projectId"]}
    result = undo.handler(intruder, FakeContext())
    assert result["workspaceRemoved"] is False
    assert (aws.efs / "projects" / winner["projectId"] / ".git").is_dir()
    assert projects.get_owned(winner["projectId"], USER) is not None


def test_reserve_name_held_by_another_job_is_name_taken(aws):
    run_steps(state_of(aws, job_id="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), until="reserve")
    other = state_of(aws, job_id="cccccccccccccccccccccccccccccccc")

    with pytest.raises(NameTaken, match="my-app"):
        reserve_name.handler(other, FakeContext())

    assert projects.name_reservation(USER, "my-app")["jobId"] == "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    events = aws.events(other["jobId"])
    assert [(e["step"], e["status"]) for e in events] == [("reserve-name", "STARTED"), ("reserve-name", "FAILED")]
    assert events[-1]["detail"]["code"] == "NameTaken"
    assert jobs.get(other["jobId"])["steps"]["reserve-name"]["status"] == "FAILED"


def test_the_same_name_for_another_user_is_free(aws):
    run_steps(state_of(aws, job_id="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), until="reserve")
    theirs = state_of(aws, job_id="dddddddddddddddddddddddddddddddd") | {"userId": "bob"}
    assert reserve_name.handler(theirs, FakeContext()) == {"name": "my-app"}


@pytest.mark.parametrize("template", ["no-such-template", "../web-app", "web-app/../../core", ""])
def test_write_scaffold_with_an_unknown_template(aws, template):
    state = state_of(aws)
    state["params"]["template"] = template
    with pytest.raises(ScaffoldNotFound):
        write_scaffold.handler(state, FakeContext())
    assert keys_under(aws, "projects/") == []
    events = aws.events(state["jobId"])
    assert events[-1]["status"] == "FAILED" and events[-1]["detail"]["code"] == "ScaffoldNotFound"


def test_notify_failed_keeps_the_message_and_drops_the_stack_trace(aws):
    state = state_of(aws)
    cause = {
        "errorMessage": "you already have a project named 'my-app'",
        "errorType": "NameTaken",
        "stackTrace": ['  File "/var/task/steps/project/reserve_name.py", line 43, in handler\n'],
    }
    caught = {"Error": "NameTaken", "Cause": json.dumps(cause)}

    answer = notify.handler({"jobId": state["jobId"], "status": "FAILED", "error": caught}, FakeContext())

    assert answer == {"jobId": state["jobId"], "status": "FAILED", "closed": True}
    expected = {"code": "NameTaken", "message": "you already have a project named 'my-app'"}
    job = jobs.get(state["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"] == expected
    finished = aws.events(state["jobId"])[-1]
    assert finished["type"] == "job.finished" and finished["status"] == "FAILED"
    assert finished["error"] == expected
    stored = json.dumps(job) + json.dumps(finished)
    assert "stackTrace" not in stored and "reserve_name.py" not in stored


@pytest.mark.parametrize(
    ("caught", "expected"),
    [
        (
            {"Error": "States.Timeout", "Cause": "Task timed out"},
            {"code": "States.Timeout", "message": "Task timed out"},
        ),
        ({"Error": "States.TaskFailed"}, {"code": "States.TaskFailed", "message": "States.TaskFailed"}),
        (None, {"code": "Failed", "message": "Failed"}),
    ],
)
def test_notify_failed_with_other_causes(aws, caught, expected):
    state = state_of(aws)
    notify.handler({"jobId": state["jobId"], "status": "FAILED", "error": caught}, FakeContext())
    assert jobs.get(state["jobId"])["error"] == expected


def test_notify_on_a_job_closed_by_a_cancel_announces_nothing(aws):
    state = state_of(aws)
    job = jobs.get(state["jobId"])
    from core import publisher

    publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "cancelled by the user"})
    answer = notify.handler({"jobId": state["jobId"], "status": "SUCCEEDED", "result": {}}, FakeContext())
    assert answer["closed"] is False
    assert jobs.get(state["jobId"])["status"] == "CANCELLED"
    assert [e["type"] for e in aws.events(state["jobId"])] == ["job.finished"]


def test_notify_for_a_missing_job_fails(aws):
    with pytest.raises(LookupError):
        notify.handler({"jobId": "nope", "status": "SUCCEEDED", "result": {}}, FakeContext())
