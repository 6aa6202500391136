"""The event publisher: numbered events with no gaps, one final event per job, pushes to the owner only."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core import aws as core_aws
from core import connections, jobs, publisher
from core.config import settings

from .conftest import OTHER, USER


def subscribe_directly(env: Any, key: str, connection_id: str, user: str) -> None:
    """A connection and one subscription, as the ``$connect`` and ``subscribe`` handlers write them."""
    _, kind, target = key.split("#", 2)
    if connections.connection(connection_id) is None:
        connections.save_connection(connection_id, user)
    connections.subscribe(connection_id, user, kind, target)


def connection_items(env: Any, connection_id: str) -> list[dict[str, Any]]:
    items = env.table("CONNECTIONS_TABLE").scan()["Items"]
    return [
        item for item in items if item["pk"] == f"conn#{connection_id}" or item["sk"].startswith(f"{connection_id}#")
    ]


def test_publish_numbers_events_from_one_without_gaps(aws):
    job = aws.put_job("job-seq")

    published = [publisher.publish(job, {"type": "job.log", "lines": [f"line {i}"]}) for i in range(5)]

    assert [e["seq"] for e in published] == [1, 2, 3, 4, 5]
    stored = aws.events("job-seq")
    assert [e["seq"] for e in stored] == [1, 2, 3, 4, 5]
    assert [e["lines"] for e in stored] == [[f"line {i}"] for i in range(5)]
    assert all(e["jobId"] == "job-seq" and e["type"] == "job.log" and e["at"].endswith("Z") for e in stored)
    assert jobs.get("job-seq")["seq"] == 5


def test_publish_to_a_missing_job_fails_loudly(aws):
    with pytest.raises(LookupError):
        publisher.publish({"jobId": "nope", "userId": USER}, {"type": "job.log", "lines": []})
    assert aws.events("nope") == []


def test_concurrent_publishers_leave_no_gap_and_no_duplicate(aws, atomic_requests, monkeypatch):
    # Eight publishers on one job is far more contention than a workflow makes (its steps run
    # in turn); this test is about numbering, so the attempt bound may not make it flaky.
    monkeypatch.setattr(publisher, "MAX_ATTEMPTS", 500)
    job = aws.put_job("job-race")
    errors: list[BaseException] = []
    returned: list[int] = []
    lock = threading.Lock()

    def publish_ten(worker: int) -> None:
        try:
            for i in range(10):
                event = publisher.publish(job, {"type": "job.log", "lines": [f"{worker}:{i}"]})
                with lock:
                    returned.append(event["seq"])
        except BaseException as e:  # surfaced below with the failing assertion
            errors.append(e)

    threads = [threading.Thread(target=publish_ten, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(returned) == list(range(1, 81))
    stored = aws.events("job-race")
    assert [e["seq"] for e in stored] == list(range(1, 81))
    assert sorted(line for e in stored for line in e["lines"]) == sorted(
        f"{w}:{i}" for w in range(8) for i in range(10)
    )
    assert jobs.get("job-race")["seq"] == 80


def test_finish_closes_the_job_once(aws):
    job = aws.put_job("job-fin")
    publisher.publish(job, {"type": "job.log", "lines": ["working"]})

    assert publisher.finish(job, "SUCCEEDED", result={"projectId": "prj-1"}) is True
    assert publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "too late"}) is False

    stored = jobs.get("job-fin")
    assert stored["status"] == "SUCCEEDED"
    assert stored["result"] == {"projectId": "prj-1"}
    assert stored.get("error") is None
    events = aws.events("job-fin")
    assert [e["type"] for e in events] == ["job.log", "job.finished"]
    assert events[-1]["status"] == "SUCCEEDED" and events[-1]["result"] == {"projectId": "prj-1"}
    assert stored["seq"] == 2


def test_finish_on_a_job_closed_elsewhere_stores_nothing(aws):
    job = aws.put_job("job-closed", status="CANCELLED")
    assert publisher.finish(job, "SUCCEEDED", result={}) is False
    assert aws.events("job-closed") == []
    assert jobs.get("job-closed")["status"] == "CANCELLED"


def test_progress_records_the_step_on_the_job(aws):
    job = aws.put_job("job-steps")

    publisher.progress(job, "write-scaffold", "STARTED")
    started = jobs.get("job-steps")["steps"]["write-scaffold"]
    assert started["status"] == "STARTED" and started["startedAt"] and started["endedAt"] is None

    publisher.progress(job, "write-scaffold", "SUCCEEDED", {"files": 3})
    done = jobs.get("job-steps")["steps"]["write-scaffold"]
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] == started["startedAt"]
    assert done["endedAt"] >= done["startedAt"]

    events = aws.events("job-steps")
    assert [(e["type"], e["step"], e["status"]) for e in events] == [
        ("job.progress", "write-scaffold", "STARTED"),
        ("job.progress", "write-scaffold", "SUCCEEDED"),
    ]
    assert events[1]["detail"] == {"files": 3}
    view = jobs.view(jobs.get("job-steps"))
    assert view["steps"] == [{"name": "write-scaffold", **done}]


def test_pushes_reach_only_the_owners_subscribers(aws):
    job = aws.put_job("job-push", projectId="prj-push")
    subscribe_directly(aws, "sub#job#job-push", "c-alice", USER)
    subscribe_directly(aws, "sub#job#job-push", "c-bob", OTHER)  # a stranger's subscription, however it got there
    subscribe_directly(aws, "sub#project#prj-push", "c-alice-project", USER)
    subscribe_directly(aws, "sub#job#another-job", "c-alice-other", USER)

    event = publisher.publish(job, {"type": "job.log", "lines": ["hello"]})

    assert aws.pushed("c-alice") == [event]
    assert aws.pushed("c-alice-project") == [event]
    assert aws.pushed("c-bob") == []
    assert aws.pushed("c-alice-other") == []


def test_a_gone_connection_is_forgotten_and_does_not_break_publishing(aws, monkeypatch):
    job = aws.put_job("job-gone")
    subscribe_directly(aws, "sub#job#job-gone", "c-gone", USER)
    connections.subscribe("c-gone", USER, "project", "prj-x")
    subscribe_directly(aws, "sub#job#job-gone", "c-live", USER)

    management = core_aws.connections_client(settings().connections_url)
    real_post = management.post_to_connection
    attempts: list[str] = []

    def post_to_connection(**kwargs: Any) -> Any:
        attempts.append(kwargs["ConnectionId"])
        if kwargs["ConnectionId"] == "c-gone":
            raise ClientError(
                {"Error": {"Code": "GoneException", "Message": "gone"}, "ResponseMetadata": {"HTTPStatusCode": 410}},
                "PostToConnection",
            )
        return real_post(**kwargs)

    monkeypatch.setattr(management, "post_to_connection", post_to_connection)

    event = publisher.publish(job, {"type": "job.log", "lines": ["still here"]})

    assert event is not None and event["seq"] == 1
    assert "c-gone" in attempts
    assert connection_items(aws, "c-gone") == []
    assert len(connection_items(aws, "c-live")) == 2
    assert aws.pushed("c-live") == [event]
    assert connections.subscribers(USER, [("job", "job-gone")]) == ["c-live"]
    # The next event no longer tries the gone connection.
    attempts.clear()
    publisher.publish(job, {"type": "job.log", "lines": ["again"]})
    assert attempts == ["c-live"]


def test_other_push_failures_are_swallowed_and_keep_the_connection(aws, monkeypatch):
    job = aws.put_job("job-flaky")
    subscribe_directly(aws, "sub#job#job-flaky", "c-flaky", USER)
    management = core_aws.connections_client(settings().connections_url)

    def post_to_connection(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}}, "PostToConnection")

    monkeypatch.setattr(management, "post_to_connection", post_to_connection)

    assert publisher.finish(job, "SUCCEEDED", result={}) is True
    assert jobs.get("job-flaky")["status"] == "SUCCEEDED"
    assert len(connection_items(aws, "c-flaky")) == 2
