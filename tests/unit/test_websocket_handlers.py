"""The WebSocket handlers: ``$connect``, ``$default`` (ping, subscribe, unsubscribe) and ``$disconnect``.

What a client receives is read back from moto's ``@connections`` API, where the handlers post it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import connections, publisher
from websocket import connect, default, disconnect

from .conftest import OTHER, USER, FakeContext


def ws_event(connection_id: str, route: str, body: str | None = None, user: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
        "connectionId": connection_id,
        "domainName": "abc.execute-api.us-east-1.amazonaws.com",
        "stage": "test",
        "apiId": "abc",
        "requestId": "req-1",
    }
    if user is not None:
        context["authorizer"] = {"principalId": user, "userId": user}
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if body is not None:
        event["body"] = body
    return event


def connect_as(connection_id: str, user: str) -> dict[str, Any]:
    return connect.handler(ws_event(connection_id, "$connect", user=user), FakeContext())


def send(connection_id: str, message: Any) -> dict[str, Any]:
    body = message if isinstance(message, str) else json.dumps(message)
    return default.handler(ws_event(connection_id, "$default", body), FakeContext())


def items_of(env: Any, connection_id: str) -> list[dict[str, Any]]:
    items = env.table("CONNECTIONS_TABLE").scan()["Items"]
    return [i for i in items if i["pk"] == f"conn#{connection_id}" or i["sk"].startswith(f"{connection_id}#")]


def test_connect_remembers_the_user(aws):
    assert connect_as("c1", USER) == {"statusCode": 200}
    record = connections.connection("c1")
    assert record["userId"] == USER
    assert record["connectedAt"].endswith("Z")
    assert int(record["expiresAt"]) > 0


def test_connect_without_an_authorized_user_is_refused(aws):
    assert connect.handler(ws_event("c0", "$connect"), FakeContext())["statusCode"] == 401
    assert connections.connection("c0") is None


def test_ping_gets_pong(aws):
    connect_as("c1", USER)
    assert send("c1", {"action": "ping"}) == {"statusCode": 200}
    assert aws.pushed("c1") == [{"type": "pong"}]


def test_subscribe_to_own_running_job(aws):
    job = aws.put_job("job-1")
    connect_as("c1", USER)

    send("c1", {"action": "subscribe", "jobId": "job-1"})

    assert aws.pushed("c1") == [{"type": "subscribed", "jobId": "job-1"}]
    assert connections.subscribers(USER, [("job", "job-1")]) == ["c1"]
    # From now on the job's events reach the connection.
    event = publisher.publish(job, {"type": "job.log", "lines": ["hi"]})
    assert aws.pushed("c1")[-1] == event


def test_subscribe_to_a_finished_job_gets_its_finish_at_once(aws):
    job = aws.put_job("job-done")
    publisher.progress(job, "reserve-name", "STARTED")
    publisher.finish(job, "FAILED", error={"code": "NameTaken", "message": "taken"})
    connect_as("c1", USER)

    send("c1", {"action": "subscribe", "jobId": "job-done"})

    pushed = aws.pushed("c1")
    assert pushed[0] == {"type": "subscribed", "jobId": "job-done"}
    assert len(pushed) == 2
    finished = pushed[1]
    assert finished == aws.events("job-done")[-1]
    assert finished["type"] == "job.finished" and finished["status"] == "FAILED" and finished["seq"] == 2
    assert finished["error"] == {"code": "NameTaken", "message": "taken"}


def test_a_step_that_outlived_a_cancel_tells_nothing_after_job_finished(aws):
    """A step still running when the user cancelled publishes nothing more; a late subscriber gets the end."""
    job = aws.put_job("job-cancelled")
    publisher.progress(job, "prepare", "STARTED")
    publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "cancelled by the user"})

    assert publisher.progress(job, "prepare", "SUCCEEDED") is None
    assert publisher.step_detail(job, "prepare", {"percent": 50}) is None
    assert aws.events("job-cancelled")[-1]["type"] == "job.finished"

    connect_as("c1", USER)
    send("c1", {"action": "subscribe", "jobId": "job-cancelled"})
    assert [m["type"] for m in aws.pushed("c1")] == ["subscribed", "job.finished"]


def test_a_late_subscriber_gets_job_finished_even_when_an_event_follows_it(aws):
    """A refused retry tells its retry FAILED after the job is closed again: job.finished is not last."""
    job = aws.put_job("job-refused-retry")
    publisher.finish(job, "FAILED", error={"code": "GitFailed", "message": "the server failed"})
    publisher.publish(job, {"type": "job.progress", "step": "retry", "status": "FAILED", "detail": {}})
    assert aws.events("job-refused-retry")[-1]["type"] == "job.progress"

    connect_as("c1", USER)
    send("c1", {"action": "subscribe", "jobId": "job-refused-retry"})
    pushed = aws.pushed("c1")
    assert [m["type"] for m in pushed] == ["subscribed", "job.finished"]
    assert pushed[1]["status"] == "FAILED" and pushed[1]["seq"] == 1


def test_a_job_a_retry_reopened_is_not_told_its_old_end(aws):
    """RUNNING again after a retry: the job.finished of its first attempt is history, not its end."""
    job = aws.put_job("job-reopened")
    publisher.finish(job, "FAILED", error={"code": "GitFailed", "message": "the server failed"})
    aws.table("JOBS_TABLE").update_item(
        Key={"jobId": "job-reopened"},
        UpdateExpression="SET #s = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":r": "RUNNING"},
    )

    connect_as("c1", USER)
    send("c1", {"action": "subscribe", "jobId": "job-reopened"})
    assert [m["type"] for m in aws.pushed("c1")] == ["subscribed"]


def test_subscribe_to_another_users_job_is_not_found(aws):
    aws.put_job("job-theirs", user=OTHER)
    connect_as("c1", USER)

    send("c1", {"action": "subscribe", "jobId": "job-theirs"})
    send("c1", {"action": "subscribe", "jobId": "job-that-does-not-exist"})

    pushed = aws.pushed("c1")
    assert [m["type"] for m in pushed] == ["error", "error"]
    assert [m["error"]["code"] for m in pushed] == ["NotFound", "NotFound"]
    # The two answers do not tell a stranger's job from no job.
    assert pushed[0]["error"]["message"].replace("job-theirs", "X") == pushed[1]["error"]["message"].replace(
        "job-that-does-not-exist", "X"
    )
    assert connections.subscribers(USER, [("job", "job-theirs")]) == []
    assert len(items_of(aws, "c1")) == 1  # the connection only


def test_subscribe_to_projects(aws):
    aws.put_job("job-mine", projectId="prj-mine")  # a project still being created by the user's job
    aws.put_job("job-theirs", user=OTHER, projectId="prj-theirs")
    connect_as("c1", USER)

    send("c1", {"action": "subscribe", "projectId": "prj-mine"})
    send("c1", {"action": "subscribe", "projectId": "prj-theirs"})

    pushed = aws.pushed("c1")
    assert pushed[0] == {"type": "subscribed", "projectId": "prj-mine"}
    assert pushed[1]["type"] == "error" and pushed[1]["error"]["code"] == "NotFound"
    assert connections.subscribers(USER, [("project", "prj-mine")]) == ["c1"]
    assert connections.subscribers(USER, [("project", "prj-theirs")]) == []


@pytest.mark.parametrize("body", ["not json", "", "[1, 2]", '"ping"', "{"])
def test_a_message_that_is_not_a_json_object_is_a_validation_error(aws, body):
    connect_as("c1", USER)
    assert send("c1", body) == {"statusCode": 200}
    pushed = aws.pushed("c1")
    assert len(pushed) == 1
    assert pushed[0]["type"] == "error"
    assert pushed[0]["error"]["code"] == "ValidationError"
    assert pushed[0]["error"]["message"]


@pytest.mark.parametrize(
    "message",
    [
        {"action": "dance"},
        {"jobId": "job-1"},
        {"action": "subscribe"},
        {"action": "subscribe", "jobId": "job-1", "projectId": "prj-1"},
        {"action": "subscribe", "jobId": 5},
        {"action": "subscribe", "jobId": ""},
    ],
)
def test_messages_the_server_cannot_take_get_an_error(aws, message):
    aws.put_job("job-1")
    connect_as("c1", USER)
    send("c1", message)
    pushed = aws.pushed("c1")
    assert len(pushed) == 1 and pushed[0]["type"] == "error"
    assert pushed[0]["error"]["code"] == "ValidationError"
    assert connections.subscribers(USER, [("job", "job-1")]) == []


def test_an_oversized_message_is_refused(aws):
    connect_as("c1", USER)
    send("c1", json.dumps({"action": "ping", "pad": "x" * 40_000}))
    pushed = aws.pushed("c1")
    assert pushed[0]["type"] == "error" and pushed[0]["error"]["code"] == "ValidationError"


def test_unsubscribe_removes_the_subscription(aws):
    job = aws.put_job("job-1")
    connect_as("c1", USER)
    send("c1", {"action": "subscribe", "jobId": "job-1"})

    send("c1", {"action": "unsubscribe", "jobId": "job-1"})

    assert aws.pushed("c1")[-1] == {"type": "unsubscribed", "jobId": "job-1"}
    assert connections.subscribers(USER, [("job", "job-1")]) == []
    assert not connections.connection("c1").get("subs")
    before = len(aws.pushed("c1"))
    publisher.publish(job, {"type": "job.log", "lines": ["unheard"]})
    assert len(aws.pushed("c1")) == before


def test_disconnect_forgets_the_connection_and_its_subscriptions(aws):
    aws.put_job("job-1", projectId="prj-1")
    aws.put_job("job-2")
    connect_as("c1", USER)
    connect_as("c2", USER)
    send("c1", {"action": "subscribe", "jobId": "job-1"})
    send("c1", {"action": "subscribe", "jobId": "job-2"})
    send("c1", {"action": "subscribe", "projectId": "prj-1"})
    send("c2", {"action": "subscribe", "jobId": "job-1"})
    assert len(items_of(aws, "c1")) == 4

    assert disconnect.handler(ws_event("c1", "$disconnect"), FakeContext()) == {"statusCode": 200}

    assert items_of(aws, "c1") == []
    assert connections.subscribers(USER, [("job", "job-1")]) == ["c2"]
    # A second $disconnect (or one for a connection never stored) is harmless.
    assert disconnect.handler(ws_event("c1", "$disconnect"), FakeContext()) == {"statusCode": 200}
    assert disconnect.handler(ws_event("c-never", "$disconnect"), FakeContext()) == {"statusCode": 200}


def test_a_subscribe_that_races_the_disconnect_leaves_nothing_a_later_forget_trips_on(aws):
    # The client goes away (ws.gone, a dropped network) while its subscribe is in flight: $disconnect
    # forgets the connection, then the subscribe's writes land and make its item again.
    connections.save_connection("c1", USER)
    connections.forget("c1")
    connections.subscribe("c1", USER, "job", "job-1")
    record = connections.connection("c1")
    assert record["userId"] == USER and int(record["expiresAt"]) > 0  # the TTL removes it if nothing else does
    connections.forget("c1")  # as the publisher does on the 410: it must not raise
    assert items_of(aws, "c1") == []
    connections.unsubscribe("c1", USER, "job", "job-1")  # an item of the key alone
    connections.forget("c1")
    assert items_of(aws, "c1") == []


def test_a_message_on_an_unknown_connection_is_gone(aws):
    assert send("c-unknown", {"action": "ping"}) == {"statusCode": 410}
    assert aws.pushed("c-unknown") == []


def test_deeply_nested_json_gets_an_error_message(aws):
    connect_as("c1", USER)
    send("c1", "[" * 20_000)
    assert aws.pushed("c1")[0]["error"]["code"] == "ValidationError"
