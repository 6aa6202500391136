"""The build workflow's first step: settle what the worker will run, before anything is queued.

The command is the job's own or the project's (``build.command`` in ``longrun.json`` in its
workspace), and the artifact globs are the project's (``build.artifacts``). Both are user content
(the file comes from the user's repository): the command runs as the build anyway, but the globs
are checked here so the worker never uploads a file from outside the workspace. The timeouts the
two wait tasks need are computed here too: the Queue state's (``queueTimeoutSeconds``, the
deployment's ``BuildQueueTimeoutSeconds``, no heartbeat) and the Run state's (``heartbeatSeconds``,
``taskTimeoutSeconds``).

Then the build's place in the queue is announced: a ``job.progress`` of step ``build``, status
``QUEUED``, with ``position`` = the builds waiting on the queue just before this one joins it, plus
one (SQS's ``ApproximateNumberOfMessages``, every user's builds). It is what FIFO order would give;
the queue is a fair queue (``MessageGroupId`` = the user), so a user with few builds waiting starts
sooner than the number says, and one whose builds crowd the queue waits behind quieter users.
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, builds, publisher
from core.observability import logger, tracer
from core.paths import PathError, check_relative_path
from core.steps import job_step
from steps.build.errors import InvalidProjectFile, NoBuildCommand, WorkspaceNotFound
from steps.project.workspace import workspace_dir

MAX_PROJECT_FILE_BYTES = 64 * 1024
MAX_ARTIFACT_GLOBS = 20
MAX_COMMAND_CHARS = 4096
# Beyond the build's own limit, what the Run task allows for the worker's start and its upload.
TASK_TIMEOUT_MARGIN_SECONDS = 300
# The template's BuildQueueTimeoutSeconds default: how long a build may wait for a worker.
DEFAULT_QUEUE_TIMEOUT_SECONDS = 3600


def _project_file(project_id: str) -> dict[str, Any]:
    """The workspace's ``longrun.json``, read without following a symlink out of the workspace."""
    root = workspace_dir(project_id)
    if not root.is_dir():
        raise WorkspaceNotFound(f"project {project_id} has no workspace yet")
    try:
        # O_NONBLOCK: a FIFO of that name (a build can make one) must not hang the step.
        fd = os.open(root / builds.PROJECT_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InvalidProjectFile(f"{builds.PROJECT_FILE} cannot be read: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidProjectFile(f"{builds.PROJECT_FILE} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_PROJECT_FILE_BYTES + 1)
    if len(data) > MAX_PROJECT_FILE_BYTES:
        raise InvalidProjectFile(f"{builds.PROJECT_FILE} is over {MAX_PROJECT_FILE_BYTES} bytes")
    try:
        value = json.loads(data)
    except ValueError as e:
        raise InvalidProjectFile(f"{builds.PROJECT_FILE} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidProjectFile(f"{builds.PROJECT_FILE} is not a JSON object")
    return value


def check_artifact_glob(pattern: object) -> str:
    """A glob relative to the workspace (``dist/**``, ``*.zip``): no absolute path, no ``..``, no ``.git``."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidProjectFile("build.artifacts holds a pattern that is not a non-empty string")
    # Wildcards are not path characters: check the pattern with each one as a plain letter.
    plain = pattern.replace("**", "x").replace("*", "x").replace("?", "x").replace("[", "x").replace("]", "x")
    try:
        check_relative_path(plain, "build.artifacts")
    except PathError as e:
        raise InvalidProjectFile(f"build.artifacts pattern {pattern!r}: {e.message}") from None
    return pattern


def build_settings(project_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The command and artifact globs of this build."""
    build = _project_file(project_id).get("build", {})
    if not isinstance(build, dict):
        raise InvalidProjectFile("build in longrun.json is not an object")
    command = params.get("command") or build.get("command")
    if not command:
        raise NoBuildCommand("give params.command, or set build.command in the project's longrun.json")
    if not isinstance(command, str) or len(command) > MAX_COMMAND_CHARS or "\0" in command:
        raise InvalidProjectFile(f"build.command must be a string of at most {MAX_COMMAND_CHARS} characters")
    globs = build.get("artifacts", [])
    if not isinstance(globs, list) or len(globs) > MAX_ARTIFACT_GLOBS:
        raise InvalidProjectFile(f"build.artifacts must be a list of at most {MAX_ARTIFACT_GLOBS} patterns")
    return {"command": command, "artifacts": [check_artifact_glob(g) for g in globs]}


@job_step("prepare", summary=lambda r: {"command": r["command"][:200], "artifacts": r["artifacts"]})
def _prepare(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settled = build_settings(event["projectId"], event["params"])
    timeout = int(event["params"].get("timeoutSeconds", 1800))
    heartbeat = int(os.environ.get("BUILD_HEARTBEAT_TIMEOUT_SECONDS", "180"))
    queue_timeout = int(os.environ.get("BUILD_QUEUE_TIMEOUT_SECONDS", str(DEFAULT_QUEUE_TIMEOUT_SECONDS)))
    task_timeout = timeout + heartbeat + TASK_TIMEOUT_MARGIN_SECONDS
    return {
        **settled,
        "timeoutSeconds": timeout,
        # Queue: how long the build may wait for a worker to claim it (no heartbeat while it waits).
        "queueTimeoutSeconds": queue_timeout,
        # Run: a worker that stops heartbeating for this long is lost, and the build is queued again.
        "heartbeatSeconds": heartbeat,
        "taskTimeoutSeconds": task_timeout,
        # Which run of the build this is: 0, then one more each time a worker was lost (the WorkerLost Choice).
        "run": {"attempt": 0},
        # When TTL may remove a Run token a worker never took (epoch seconds, a string for the item's N).
        "handoffExpiresAt": str(int(time.time()) + 3 * (queue_timeout + task_timeout)),
    }


def queue_position(queue_url: str) -> dict[str, int]:
    """Where a build joining the queue now stands: the builds waiting (``position`` counts this one) and running.

    SQS's counts are approximate (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html):
    ``ApproximateNumberOfMessages`` are the builds no worker has taken, ``...NotVisible`` those a worker holds.
    """
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "position": int(attributes.get("ApproximateNumberOfMessages", 0)) + 1,
        "running": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settled = _prepare(event, context)
    # After prepare's own SUCCEEDED, just before the Queue state sends the message. A failed count
    # costs the user the number, never the build: the event then says so without one.
    try:
        place: dict[str, Any] = queue_position(os.environ["BUILD_QUEUE_URL"])
    except Exception:
        logger.exception("could not count the build queue")
        place = {"position": None}
    publisher.progress(event, "build", "QUEUED", {**place, "queueTimeoutSeconds": settled["queueTimeoutSeconds"]})
    return settled
