"""The per-user limit of concurrent jobs (core/quota.py) against moto: exact, given back once, self-healing."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from core import jobs, projects, publisher, quota, submission
from core.errors import Conflict, Throttled
from triggers import start_job

from .conftest import OTHER, USER
from .test_api import call
from .test_start_job_trigger import _dead_letters, _event, _record

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch):
    def set_limit(n: int) -> int:
        monkeypatch.setenv("MAX_CONCURRENT_JOBS_PER_USER", str(n))
        return n

    return set_limit


def _create(name: str, user: str = USER, key: str | None = None) -> dict[str, Any]:
    return submission.submit(user, {"type": "create-project", "params": {"name": name}}, key)


def _running(user: str = USER) -> set[str]:
    return set(quota.running(user))


def test_the_template_sets_the_limit_of_every_function_that_starts_jobs(aws):
    for logical_id in ("ApiFunction", "StartJobTriggerFunction"):
        assert aws.functions[logical_id].environment["MAX_CONCURRENT_JOBS_PER_USER"] == "20"


def test_fifty_racing_starts_with_a_limit_of_five_start_exactly_five(aws, limit, atomic_requests):
    limit(5)
    barrier = threading.Barrier(50)

    def start(i: int) -> str:
        barrier.wait()
        try:
            return _create(f"race-{i}")["jobId"]
        except Throttled as e:
            assert e.status == 429 and e.headers["Retry-After"] == str(quota.RETRY_AFTER_SECONDS)
            return "throttled"

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(start, range(50)))
    started = {o for o in outcomes if o != "throttled"}
    assert len(started) == 5 and outcomes.count("throttled") == 45
    assert _running() == started
    listed = jobs.query_page(user_id=USER, project_id=None, status=None, limit=100, start_key=None)[0]
    assert {j["jobId"] for j in listed} == started, "a refused start writes no job"
    assert _create("other-users-are-not-held", user=OTHER)["status"] == "RUNNING"


def test_over_the_limit_post_jobs_is_429_with_retry_after_and_the_contract_body(aws, limit):
    limit(1)
    assert call("POST", "/jobs", body={"type": "create-project", "params": {"name": "first"}}).status == 202
    answer = call("POST", "/jobs", body={"type": "create-project", "params": {"name": "second"}})
    assert answer.status == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.body["error"]["code"] == "Throttled"
    assert "MaxConcurrentJobsPerUser" in answer.body["error"]["message"]
    assert set(answer.body["error"]) <= {"code", "message", "details"}


def test_a_place_is_given_back_once_by_the_close_that_wins(aws, limit):
    limit(2)
    a, b = _create("job-a"), _create("job-b")
    with pytest.raises(Throttled):
        _create("job-c")
    assert publisher.finish(a, "SUCCEEDED", result={}) is True
    assert publisher.finish(a, "FAILED", error={"code": "Late", "message": "a second close"}) is False
    assert _running() == {b["jobId"]}, "the losing close gave nothing back, and B keeps its place"
    c = _create("job-c")
    with pytest.raises(Throttled):
        _create("job-d")
    assert _running() == {b["jobId"], c["jobId"]}


def test_a_cancel_gives_the_place_back(aws, limit):
    limit(1)
    job = call("POST", "/jobs", body={"type": "create-project", "params": {"name": "cancel-me"}}).body
    assert call("POST", "/jobs", body={"type": "create-project", "params": {"name": "next"}}).status == 429
    assert call("DELETE", f"/jobs/{job['jobId']}").status == 202
    assert call("POST", "/jobs", body={"type": "create-project", "params": {"name": "next"}}).status == 202


def test_an_idempotent_repeat_does_not_count_twice(aws, limit):
    limit(1)
    first = _create("once", key="key-1")
    again = _create("once", key="key-1")  # at the limit, yet the repeat is the same job, not a new one
    assert again["jobId"] == first["jobId"]
    assert _running() == {first["jobId"]}


def test_a_refused_start_leaves_its_idempotency_key_free(aws, limit):
    limit(1)
    running = _create("holder")
    with pytest.raises(Throttled):
        _create("waiting", key="key-2")
    publisher.finish(running, "SUCCEEDED", result={})
    assert _create("waiting", key="key-2")["status"] == "RUNNING"


def test_a_start_that_fails_gives_its_place_back(aws, limit, monkeypatch):
    limit(1)
    aws.table("PROJECTS_TABLE").put_item(
        Item={**projects.name_key(USER, "taken-name"), "userId": USER, "projectId": "prj-old", "jobId": "old"}
    )
    with pytest.raises(Conflict):  # refused before its job is written
        _create("taken-name")
    assert _running() == set()
    prefix = aws.env["STATE_MACHINE_ARN_PREFIX"]
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", prefix + "gone-")  # names a machine that does not exist
    with pytest.raises(Exception, match=r"StateMachineDoesNotExist|does not exist"):  # written, then StartFailed
        _create("never-starts")
    assert _running() == set()
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", prefix)
    assert _create("starts")["status"] == "RUNNING"


def test_places_no_job_will_give_back_are_healed_when_the_user_reaches_the_limit(aws, limit):
    limit(3)
    closed = _create("closed-but-not-given-back")
    aws.table("JOBS_TABLE").update_item(  # a close whose give-back was lost (a crash in between)
        Key={"jobId": closed["jobId"]},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "SUCCEEDED"},
    )
    crashed, in_flight = uuid.uuid4().hex, uuid.uuid4().hex
    table = aws.table("PROJECTS_TABLE")
    for job_id, at in ((crashed, 1), (in_flight, 2**40)):  # a take long ago, and one still starting
        table.update_item(
            Key={"pk": f"quota#{USER}"},
            UpdateExpression="SET #r.#j = :at",
            ExpressionAttributeNames={"#r": "running", "#j": job_id},
            ExpressionAttributeValues={":at": at},
        )
    assert _running() == {closed["jobId"], crashed, in_flight}
    fresh = _create("fits-after-healing")
    assert _running() == {in_flight, fresh["jobId"]}, "only the stale places were given back"


def test_a_start_job_event_over_the_limit_is_retried_not_dead_lettered(aws, limit, monkeypatch, context):
    monkeypatch.setenv("TRUSTED_EVENT_SOURCES", "longrun.local")
    limit(1)
    _create("busy", user="dora")
    detail = {"userId": "dora", "type": "create-project", "params": {"name": "from-ci"}}
    batch = [_record(_event(detail, source="longrun.local"), "m-1")]
    with pytest.raises(Exception):  # noqa: B017 - the batch failed: SQS delivers the message again
        start_job.handler({"Records": batch}, context)
    assert _dead_letters(aws) == []
    assert len(quota.running("dora")) == 1


def test_the_quota_item_holds_job_ids_not_a_count(aws, limit):
    limit(2)
    job = _create("inspect")
    item = aws.table("PROJECTS_TABLE").get_item(Key={"pk": f"quota#{USER}"}, ConsistentRead=True)["Item"]
    assert set(item["running"]) == {job["jobId"]}
    assert json.loads(json.dumps(item["running"], default=int))[job["jobId"]] > 0


def test_a_retry_takes_a_place_again_and_a_refused_redrive_gives_it_back(aws, limit, monkeypatch):
    from botocore.exceptions import ClientError

    from core import aws as core_aws
    from core import retries

    limit(1)
    failed = _create("retried")
    publisher.finish(failed, "FAILED", error={"code": "GitFailed", "message": "the server hung up"})
    holder = _create("holder")
    monkeypatch.setattr(retries, "check", lambda job: {})  # its execution failed at a work state
    stepfunctions = core_aws.client("stepfunctions")
    monkeypatch.setattr(stepfunctions, "redrive_execution", lambda **kwargs: {})

    with pytest.raises(Throttled):
        retries.retry(jobs.get(failed["jobId"], consistent=True))
    assert jobs.get(failed["jobId"], consistent=True)["status"] == "FAILED"
    assert _running() == {holder["jobId"]}

    publisher.finish(holder, "SUCCEEDED", result={})
    assert retries.retry(jobs.get(failed["jobId"], consistent=True))["status"] == "RUNNING"
    assert _running() == {failed["jobId"]}, "RUNNING again, it counts again"
    with pytest.raises(Throttled):
        _create("one-too-many")

    publisher.finish(jobs.get(failed["jobId"], consistent=True), "FAILED", error={"code": "GitFailed", "message": "x"})

    def refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ExecutionNotRedrivable", "Message": "no"}}, "RedriveExecution")

    monkeypatch.setattr(stepfunctions, "redrive_execution", refused)
    with pytest.raises(Conflict):
        retries.retry(jobs.get(failed["jobId"], consistent=True))
    assert _running() == set()
