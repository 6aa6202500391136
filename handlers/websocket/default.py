"""``$default``: the client's messages, routed by their ``action`` (``subscribe``, ``unsubscribe``, ``ping``).

Answers go back through the ``@connections`` API. Anything the server cannot take, from a message
that is not JSON to another user's job id, gets an ``error`` message; another user's job and an
unknown one look the same (``NotFound``).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import connections, jobs, projects, publisher
from core.errors import ApiError, NotFound, ValidationError
from core.observability import append_job_keys, logger, tracer

MAX_MESSAGE_BYTES = 32 * 1024
_ID_FIELDS = ("jobId", "projectId")


def _target(message: dict[str, Any]) -> tuple[str, str]:
    given = [field for field in _ID_FIELDS if field in message]
    if len(given) != 1 or not isinstance(message[given[0]], str) or not message[given[0]]:
        raise ValidationError(f"{message.get('action')} takes exactly one of jobId or projectId, as a string")
    return ("job" if given[0] == "jobId" else "project"), message[given[0]]


def _owns_project(user_id: str, project_id: str) -> bool:
    """A project is the user's once it exists, or while the user's create-project job makes it."""
    if projects.get_owned(project_id, user_id):
        return True
    page, _ = jobs.query_page(user_id=user_id, project_id=project_id, status=None, limit=1, start_key=None)
    return bool(page)


def _subscribe(connection_id: str, user_id: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    kind, target_id = _target(message)
    field = "jobId" if kind == "job" else "projectId"
    if kind == "job":
        if jobs.get_owned(target_id, user_id) is None:
            raise NotFound(f"job {target_id} not found")
    elif not _owns_project(user_id, target_id):
        raise NotFound(f"project {target_id} not found")
    # The confirmation goes out before the subscription takes effect, so that it is the first
    # message about the target a client sees; an event published in between shows as a seq gap.
    connections.send(connection_id, {"type": "subscribed", field: target_id})
    connections.subscribe(connection_id, user_id, kind, target_id)
    replies: list[dict[str, Any]] = []
    if kind == "job":
        # A late or reconnecting client still learns how its job ended. Read after the
        # subscription is written (the publisher reads subscriptions after it writes the end),
        # so a job that closes meanwhile is pushed by one side or found here: never neither. The
        # status and its job.finished are written in one transaction; a job a retry reopened is
        # RUNNING, and its earlier job.finished is not its end.
        current = jobs.get(target_id, consistent=True)
        finished = publisher.finished_event(target_id) if current and current["status"] in jobs.FINAL_STATUSES else None
        if finished:
            replies.append(finished)
    return replies


def _unsubscribe(connection_id: str, user_id: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    kind, target_id = _target(message)
    connections.unsubscribe(connection_id, user_id, kind, target_id)
    return [{"type": "unsubscribed", ("jobId" if kind == "job" else "projectId"): target_id}]


def _replies(connection_id: str, user_id: str, body: str | None) -> list[dict[str, Any]]:
    if body is not None and len(body.encode()) > MAX_MESSAGE_BYTES:
        raise ValidationError("the message is too large")
    try:
        message = json.loads(body or "")
    except (ValueError, RecursionError):
        raise ValidationError("messages must be JSON objects with an action") from None
    if not isinstance(message, dict):
        raise ValidationError("messages must be JSON objects with an action")
    action = message.get("action")
    if "jobId" in message:  # the job asked about, whoever owns it (a stranger's id is refused below)
        append_job_keys(userId=user_id, jobId=message["jobId"])
    if action == "ping":
        return [{"type": "pong"}]
    if action == "subscribe":
        return _subscribe(connection_id, user_id, message)
    if action == "unsubscribe":
        return _unsubscribe(connection_id, user_id, message)
    raise ValidationError("unknown action; one of subscribe, unsubscribe, ping")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    record = connections.connection(connection_id)
    if record is None:
        return {"statusCode": 410}
    append_job_keys(userId=record["userId"])
    try:
        replies = _replies(connection_id, record["userId"], event.get("body"))
    except ApiError as e:
        replies = [{"type": "error", "error": {"code": e.code, "message": e.message}}]
    for reply in replies:
        connections.send(connection_id, reply)
    return {"statusCode": 200}
