"""The build workflow's Prepare step (``steps.build.prepare``): which command runs and which files may be uploaded.

``longrun.json`` comes from the user's repository, so it is hostile input: a wrong shape must end the
job with ``InvalidProjectFile`` (a message the user can act on), never with a crash or a glob that
reaches outside the workspace. The workspace is ``{EFS_MOUNT_PATH}/projects/{projectId}``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import publisher
from core.config import settings
from steps.build import prepare
from steps.build.prepare import InvalidProjectFile, NoBuildCommand, WorkspaceNotFound
from steps.project.workspace import workspace_dir

PROJECT = "prj-unit"


@pytest.fixture
def efs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An EFS mount of the test's own; ``settings()`` is cached, so it is read again before and after."""
    root = tmp_path / "efs"
    root.mkdir()
    monkeypatch.setenv("EFS_MOUNT_PATH", str(root))
    settings.cache_clear()
    yield root
    settings.cache_clear()


@pytest.fixture
def workspace(efs: Path) -> Path:
    path = workspace_dir(PROJECT)
    path.mkdir(parents=True)
    assert path == efs / "projects" / PROJECT
    return path


def write_project_file(workspace: Path, content: Any) -> None:
    """``longrun.json`` as given: a string is written as is (to test broken files), anything else as JSON."""
    text = content if isinstance(content, str) else json.dumps(content)
    (workspace / "longrun.json").write_text(text)


# --- which command -----------------------------------------------------------------------------


def test_the_jobs_command_wins_over_the_projects(workspace: Path) -> None:
    """A user who passes ``params.command`` runs that, even when the project names its own build."""
    write_project_file(workspace, {"build": {"command": "sh build.sh", "artifacts": ["dist/**"]}})
    settled = prepare.build_settings(PROJECT, {"command": "make release"})
    assert settled == {"command": "make release", "artifacts": ["dist/**"]}


def test_the_projects_command_when_the_job_names_none(workspace: Path) -> None:
    write_project_file(workspace, {"name": "demo", "build": {"command": "npm run build", "artifacts": ["*.zip"]}})
    assert prepare.build_settings(PROJECT, {}) == {"command": "npm run build", "artifacts": ["*.zip"]}


def test_a_project_without_artifacts_uploads_nothing(workspace: Path) -> None:
    """No ``build.artifacts`` (or no ``longrun.json`` at all) is a build whose result lists no files."""
    assert prepare.build_settings(PROJECT, {"command": "true"}) == {"command": "true", "artifacts": []}
    write_project_file(workspace, {"build": {"command": "true"}})
    assert prepare.build_settings(PROJECT, {})["artifacts"] == []


@pytest.mark.parametrize("project_file", [None, {}, {"build": {}}, {"build": {"artifacts": ["dist/**"]}}])
def test_no_command_anywhere_is_no_build_command(workspace: Path, project_file: Any) -> None:
    if project_file is not None:
        write_project_file(workspace, project_file)
    with pytest.raises(NoBuildCommand, match=r"params\.command"):
        prepare.build_settings(PROJECT, {})


def test_a_project_without_a_workspace_is_workspace_not_found(efs: Path) -> None:
    """A build of a project whose create-project or clone never finished fails at once, before anything is queued."""
    with pytest.raises(WorkspaceNotFound, match=PROJECT):
        prepare.build_settings(PROJECT, {"command": "true"})


# --- a longrun.json a build cannot use ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('["build"]', "not a JSON object"),
        ('"sh build.sh"', "not a JSON object"),
        ({"build": "sh build.sh"}, "not an object"),
        ({"build": ["sh build.sh"]}, "not an object"),
        ({"build": {"command": ["npm", "run", "build"]}}, "build.command must be a string"),
        ({"build": {"command": "x" * (prepare.MAX_COMMAND_CHARS + 1)}}, "build.command must be a string"),
        ({"build": {"command": "make\u0000rm"}}, "build.command must be a string"),
        ({"build": {"command": "make", "artifacts": "dist/**"}}, "must be a list"),
        ({"build": {"command": "make", "artifacts": ["d*"] * (prepare.MAX_ARTIFACT_GLOBS + 1)}}, "must be a list"),
        ({"build": {"command": "make", "artifacts": ["../x"]}}, "'..'"),
        ({"build": {"command": "make", "artifacts": ["/etc/*"]}}, "must be relative"),
        ({"build": {"command": "make", "artifacts": [".git/**"]}}, "git metadata"),
        ({"build": {"command": "make", "artifacts": ["dist/**", 7]}}, "not a non-empty string"),
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "build-a-string",
        "build-an-array",
        "command-a-list",
        "command-too-long",
        "command-with-nul",
        "artifacts-a-string",
        "too-many-globs",
        "glob-dotdot",
        "glob-absolute",
        "glob-git",
        "glob-not-a-string",
    ],
)
def test_a_broken_project_file_is_invalid_project_file(workspace: Path, content: Any, message: str) -> None:
    write_project_file(workspace, content)
    with pytest.raises(InvalidProjectFile, match=message):
        prepare.build_settings(PROJECT, {})


def test_a_bad_glob_fails_even_when_the_job_brings_its_own_command(workspace: Path) -> None:
    """The globs always come from the project file: a command in params does not skip their check."""
    write_project_file(workspace, {"build": {"artifacts": ["../other-project/**"]}})
    with pytest.raises(InvalidProjectFile):
        prepare.build_settings(PROJECT, {"command": "true"})


def test_an_oversized_project_file_is_refused(workspace: Path) -> None:
    write_project_file(workspace, {"build": {"command": "true"}, "padding": "x" * prepare.MAX_PROJECT_FILE_BYTES})
    with pytest.raises(InvalidProjectFile, match="over"):
        prepare.build_settings(PROJECT, {})


def test_a_project_file_symlinked_outside_the_workspace_is_not_read(workspace: Path, tmp_path: Path) -> None:
    """A repository may hold ``longrun.json -> /somewhere/else``: it is refused, not followed (O_NOFOLLOW)."""
    outside = tmp_path / "other-project-longrun.json"
    outside.write_text(json.dumps({"build": {"command": "echo from-outside", "artifacts": ["dist/**"]}}))
    (workspace / "longrun.json").symlink_to(outside)
    with pytest.raises(InvalidProjectFile, match="cannot be read") as caught:
        prepare.build_settings(PROJECT, {})
    assert "from-outside" not in str(caught.value)


def test_a_directory_named_longrun_json_is_invalid_project_file(workspace: Path) -> None:
    (workspace / "longrun.json").mkdir()
    with pytest.raises(InvalidProjectFile):
        prepare.build_settings(PROJECT, {"command": "true"})


def test_a_fifo_named_longrun_json_does_not_hang_prepare(workspace: Path) -> None:
    fifo = workspace / "longrun.json"
    os.mkfifo(fifo)
    outcome: list[BaseException | dict[str, Any]] = []

    def run() -> None:
        try:
            outcome.append(prepare.build_settings(PROJECT, {"command": "true"}))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(1.5)
    if thread.is_alive():  # unblock the reader: a writer that opens and closes gives it EOF
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail("build_settings blocked on a FIFO for over 1.5 s")
    assert isinstance(outcome[0], InvalidProjectFile)


# --- the artifact globs ----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["dist/**", "*.zip", "**", "**/*.whl", "out/[ab]?/*.tar.gz", ".github/**"])
def test_globs_relative_to_the_workspace_are_kept_as_written(pattern: str) -> None:
    assert prepare.check_artifact_glob(pattern) == pattern


@pytest.mark.parametrize(
    "pattern",
    ["../x", "dist/../../x", "/etc/*", ".git/**", "**/.git/**", ".GIT/**", "./dist/**", "dist//x", "a\\b", ""],
)
def test_globs_that_could_leave_the_workspace_or_read_git_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidProjectFile, match=r"build\.artifacts"):
        prepare.check_artifact_glob(pattern)


def test_wildcards_that_spell_git_pass_the_check(workspace: Path) -> None:
    """The check reads wildcards as plain letters, so ``.gi?/**`` passes; the worker's ``collect`` skips ``.git``.

    Recorded here so a stricter check is a deliberate change (see test_build_worker's ``.git`` test).
    """
    assert prepare.check_artifact_glob(".gi?/**") == ".gi?/**"
    assert prepare.check_artifact_glob(".g*") == ".g*"


# --- the handler ---------------------------------------------------------------------------------


@pytest.fixture
def build_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's SQS with the stack's build queue (its URL in ``BUILD_QUEUE_URL``, as the template sets it)."""
    import boto3
    from moto import mock_aws

    from tests.unit.conftest import REGION, clear_caches

    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clear_caches()
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        monkeypatch.setenv("BUILD_QUEUE_URL", sqs.create_queue(QueueName="unit-build-queue")["QueueUrl"])
        yield sqs
    clear_caches()


def test_the_handler_returns_what_the_two_wait_tasks_need_and_announces_the_place_in_the_queue(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, context: Any, build_queue: Any
) -> None:
    """Queue waits ``queueTimeoutSeconds`` (no heartbeat); Run's ``taskTimeoutSeconds`` covers the build,
    one missed heartbeat and the margin for the worker's start and upload. Then ``QUEUED`` with the position."""
    write_project_file(workspace, {"build": {"command": "sh build.sh", "artifacts": ["dist/**"]}})
    monkeypatch.setenv("BUILD_HEARTBEAT_TIMEOUT_SECONDS", "42")
    monkeypatch.setenv("BUILD_QUEUE_TIMEOUT_SECONDS", "7200")
    queue = os.environ["BUILD_QUEUE_URL"]
    for n in range(3):  # three builds wait, one of them held by a worker
        build_queue.send_message(QueueUrl=queue, MessageBody=str(n))
    build_queue.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=300)
    progress: list[tuple[str, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        publisher, "progress", lambda job, step, status, detail=None, **kw: progress.append((step, status, detail))
    )
    event = {"jobId": "j1", "userId": "alice", "projectId": PROJECT, "type": "build", "params": {"timeoutSeconds": 100}}
    before = int(time.time())
    result = prepare.handler(event, context)
    expires = int(result.pop("handoffExpiresAt"))
    task_timeout = 100 + 42 + prepare.TASK_TIMEOUT_MARGIN_SECONDS
    assert result == {
        "command": "sh build.sh",
        "artifacts": ["dist/**"],
        "timeoutSeconds": 100,
        "queueTimeoutSeconds": 7200,
        "heartbeatSeconds": 42,
        "taskTimeoutSeconds": task_timeout,
        "run": {"attempt": 0},
    }
    assert before + 7200 + task_timeout < expires <= int(time.time()) + 3 * (7200 + task_timeout)
    assert [(s, st) for s, st, _ in progress] == [("prepare", "STARTED"), ("prepare", "SUCCEEDED"), ("build", "QUEUED")]
    assert progress[1][2] == {"command": "sh build.sh", "artifacts": ["dist/**"]}
    assert progress[2][2] == {"position": 3, "running": 1, "queueTimeoutSeconds": 7200}


def test_the_queue_limit_defaults_to_an_hour_and_a_failed_count_still_announces_the_wait(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, context: Any, build_queue: Any
) -> None:
    monkeypatch.delenv("BUILD_QUEUE_TIMEOUT_SECONDS", raising=False)
    monkeypatch.setenv("BUILD_QUEUE_URL", os.environ["BUILD_QUEUE_URL"] + "-gone")
    progress: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        publisher, "progress", lambda job, step, status, detail=None, **kw: progress.append((status, detail))
    )
    event = {"jobId": "j1", "userId": "alice", "projectId": PROJECT, "type": "build", "params": {"command": "make"}}
    assert prepare.handler(event, context)["queueTimeoutSeconds"] == 3600
    assert progress[-1] == ("QUEUED", {"position": None, "queueTimeoutSeconds": 3600})


def test_the_handler_reports_a_failure_by_name(workspace: Path, monkeypatch: pytest.MonkeyPatch, context: Any) -> None:
    """The user's ``job.progress`` says ``NoBuildCommand`` and why; the error goes on to the state machine's Catch."""
    progress: list[tuple[str, dict[str, Any] | None]] = []
    monkeypatch.setattr(
        publisher, "progress", lambda job, step, status, detail=None, **kw: progress.append((status, detail))
    )
    event = {"jobId": "j1", "userId": "alice", "projectId": PROJECT, "type": "build", "params": {}}
    with pytest.raises(NoBuildCommand):
        prepare.handler(event, context)
    status, detail = progress[-1]
    assert status == "FAILED" and detail is not None
    assert detail["code"] == "NoBuildCommand" and "params.command" in detail["message"]
