"""The REST API as its users see it: API Gateway proxy events in, contract answers out, never a 5xx."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from api import app as api_app
from core import jobs, projects, publisher

from .conftest import OTHER, USER, FakeContext

HEX8 = "[0-9a-f]{8}"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    method: str,
    path: str,
    *,
    user: str = USER,
    body: Any = None,
    raw: str | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request through ``api.app.handler``, as API Gateway's Lambda proxy integration (v1) sends it."""
    all_headers = {"Content-Type": "application/json", "Authorization": "Bearer x", **(headers or {})}
    text = raw if raw is not None else (json.dumps(body) if body is not None else None)
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api123",
            "stage": "test",
            "requestId": str(uuid.uuid4()),
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/test{path}",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "authorizer": {"principalId": user, "userId": user},
        },
        "body": text,
        "isBase64Encoded": False,
    }
    response = api_app.handler(event, FakeContext(function_name="unit-ApiFunction"))
    status = response["statusCode"]
    assert status < 500, f"{method} {path} answered {status}: {response.get('body')}"
    merged = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        merged[name] = values[-1]
    payload = response.get("body")
    if response.get("isBase64Encoded"):
        payload = base64.b64decode(payload).decode()
    return Answer(status, merged, json.loads(payload) if payload else None)


def assert_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    error = answer.body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def create(name: str = "my-app", *, user: str = USER, headers: dict[str, str] | None = None, **params: Any) -> Answer:
    return call("POST", "/jobs", user=user, body={"type": "create-project", "params": {"name": name, **params}},
                headers=headers)  # fmt: skip


def executions(env: Any) -> list[dict[str, Any]]:
    return env.client("stepfunctions").list_executions(stateMachineArn=env.state_machine)["executions"]


# --- POST /jobs --------------------------------------------------------------------------------


def test_create_project_is_accepted_at_once(aws):
    answer = create("my-app")

    assert answer.status == 202
    body = answer.body
    assert set(body) == {"jobId", "type", "projectId", "status", "executionArn", "createdAt", "links"}
    job_id = body["jobId"]
    # The event is the stage URL's (requestContext.path /test/jobs): Location resolves there (api.mapping).
    assert answer.headers["Location"] == f"/test/jobs/{job_id}"
    assert body["type"] == "create-project"
    assert body["status"] == "RUNNING"
    assert re.fullmatch(r"prj-[0-9a-f]{16}", body["projectId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])
    assert body["links"] == {
        "self": f"/jobs/{job_id}",
        "events": f"/jobs/{job_id}/events",
        "console": "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{body['executionArn']}",
    }

    stored = jobs.get(job_id)
    assert stored["status"] == "RUNNING"
    assert stored["userId"] == USER
    assert stored["params"] == {"name": "my-app", "template": "web-app"}  # the schema's default filled in

    started = executions(aws)
    assert len(started) == 1
    assert re.fullmatch(f"create-project-my-app-{HEX8}", started[0]["name"])
    assert started[0]["name"].endswith(job_id[:8])
    assert started[0]["executionArn"] == body["executionArn"] == stored["executionArn"]
    execution_input = json.loads(
        aws.client("stepfunctions").describe_execution(executionArn=body["executionArn"])["input"]
    )
    assert execution_input == {
        "jobId": job_id,
        "executionArn": body["executionArn"],  # every step logs it (core.observability)
        "userId": USER,
        "projectId": body["projectId"],
        "type": "create-project",
        "params": {"name": "my-app", "template": "web-app"},
    }


def test_malformed_json_is_a_validation_error(aws):
    error = assert_error(call("POST", "/jobs", raw='{"type": "create-project", '), 400, "ValidationError")
    assert error["details"][0]["path"] == "(body)"
    assert executions(aws) == []


@pytest.mark.parametrize("raw", ["", "   ", "[]", '"create-project"', "null", "42"])
def test_a_body_that_is_not_an_object_is_a_validation_error(aws, raw):
    assert_error(call("POST", "/jobs", raw=raw), 400, "ValidationError")


def test_a_body_over_256_kib_is_too_large(aws):
    big = json.dumps({"type": "create-project", "params": {"name": "my-app", "pad": "x" * (256 * 1024)}})
    assert_error(call("POST", "/jobs", raw=big), 413, "PayloadTooLarge")
    assert executions(aws) == []


def test_unknown_type_points_at_type(aws):
    error = assert_error(call("POST", "/jobs", body={"type": "make-coffee", "params": {}}), 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["type"]


def test_every_schema_violation_is_listed_with_its_path(aws):
    answer = call("POST", "/jobs", body={"type": "create-project", "params": {"name": "AB", "extra": 1}})
    error = assert_error(answer, 400, "ValidationError")
    paths = [d["path"] for d in error["details"]]
    # "AB" is both too short and not lower case: each violation is its own entry.
    assert paths == ["params.extra", "params.name", "params.name"]
    assert all(d["message"] for d in error["details"])
    assert len({d["message"] for d in error["details"]}) == 3
    assert executions(aws) == []


def test_missing_params_name_is_required(aws):
    error = assert_error(call("POST", "/jobs", body={"type": "create-project"}), 400, "ValidationError")
    assert {"path": "params.name", "message": "is required"} in error["details"]


def test_envelope_violations_are_listed_too(aws):
    answer = call("POST", "/jobs", body={"type": "create-project", "params": {"name": "ok-name"}, "bogus": True})
    error = assert_error(answer, 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["bogus"]


def test_create_project_refuses_a_project_id(aws):
    answer = call("POST", "/jobs", body={"type": "create-project", "projectId": "prj-1", "params": {"name": "abc"}})
    error = assert_error(answer, 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["projectId"]


def test_a_taken_name_is_a_conflict(aws):
    aws.table("PROJECTS_TABLE").put_item(
        Item={**projects.name_key(USER, "taken"), "userId": USER, "projectId": "prj-old", "jobId": "old"}
    )
    assert_error(create("taken"), 409, "Conflict")
    assert executions(aws) == []
    # The name is only taken among the same user's projects.
    assert create("taken", user=OTHER).status == 202


def test_the_same_idempotency_key_and_body_give_the_same_job(aws):
    first = create("same", headers={"Idempotency-Key": "key-1"})
    second = create("same", headers={"Idempotency-Key": "key-1"})
    assert first.status == second.status == 202
    assert second.body["jobId"] == first.body["jobId"]
    assert second.headers["Location"] == first.headers["Location"]
    assert len(executions(aws)) == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict(aws):
    assert create("first", headers={"Idempotency-Key": "key-2"}).status == 202
    assert_error(create("second", headers={"Idempotency-Key": "key-2"}), 409, "Conflict")
    assert len(executions(aws)) == 1


def test_idempotency_keys_belong_to_their_user(aws):
    mine = create("shared", headers={"Idempotency-Key": "key-3"})
    theirs = create("shared", user=OTHER, headers={"Idempotency-Key": "key-3"})
    assert theirs.status == 202
    assert theirs.body["jobId"] != mine.body["jobId"]


def test_an_idempotent_retry_after_the_name_is_reserved_returns_the_same_job(aws):
    first = create("retry-me", headers={"Idempotency-Key": "key-4"})
    assert first.status == 202
    job = jobs.get(first.body["jobId"])
    # What the workflow's first step (reserve-name) writes within a second of the start.
    aws.table("PROJECTS_TABLE").put_item(
        Item={
            **projects.name_key(USER, "retry-me"),
            "userId": USER,
            "projectId": job["projectId"],
            "jobId": job["jobId"],
        }
    )
    again = create("retry-me", headers={"Idempotency-Key": "key-4"})
    assert again.status == 202
    assert again.body["jobId"] == first.body["jobId"]


@pytest.mark.parametrize("key", ["", "x" * 129, "has space", "ünïcode"])
def test_a_malformed_idempotency_key_is_a_validation_error(aws, key):
    assert_error(create("my-app", headers={"Idempotency-Key": key}), 400, "ValidationError")


def test_deeply_nested_json_is_a_validation_error(aws):
    assert_error(call("POST", "/jobs", raw="[" * 100_000), 400, "ValidationError")


# --- GET /jobs/{jobId} -------------------------------------------------------------------------


def test_get_own_job(aws):
    job_id = create("getme").body["jobId"]
    job = jobs.get(job_id)
    publisher.progress(job, "reserve-name", "STARTED")
    publisher.progress(job, "reserve-name", "SUCCEEDED", {"name": "getme"})

    answer = call("GET", f"/jobs/{job_id}")

    assert answer.status == 200
    body = answer.body
    for field in ("jobId", "type", "projectId", "status", "createdAt", "updatedAt", "steps", "result", "error",
                  "executionArn"):  # fmt: skip
        assert field in body
    assert body["jobId"] == job_id and body["status"] == "RUNNING"
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("reserve-name", "SUCCEEDED")]
    assert body["steps"][0]["startedAt"] and body["steps"][0]["endedAt"]
    assert body["updatedAt"] >= body["createdAt"]
    assert "userId" not in body and "seq" not in body


def test_another_users_job_is_not_found(aws):
    job_id = create("private").body["jobId"]
    mine_missing = assert_error(call("GET", "/jobs/0123456789abcdef0123456789abcdef"), 404, "NotFound")
    theirs = assert_error(call("GET", f"/jobs/{job_id}", user=OTHER), 404, "NotFound")
    assert set(theirs) <= {"code", "message", "details"}
    assert set(mine_missing) <= {"code", "message", "details"}


@pytest.mark.parametrize("job_id", ["x" * 65, "has.dot", "%2e%2e"])
def test_ids_of_the_wrong_shape_are_not_found(aws, job_id):
    assert_error(call("GET", f"/jobs/{job_id}"), 404, "NotFound")


# --- GET /jobs ---------------------------------------------------------------------------------


def seed_jobs(env: Any) -> list[str]:
    """Five jobs of the caller (newest last) and two of another user."""
    ids = []
    for i, status in enumerate(["SUCCEEDED", "RUNNING", "FAILED", "SUCCEEDED", "RUNNING"]):
        job_id = f"job{i}"
        env.put_job(job_id, status=status, createdAt=f"2025-01-0{i + 1}T00:00:00.000Z", projectId=f"prj-{i % 2}")
        ids.append(job_id)
    env.put_job("theirs-1", user=OTHER, createdAt="2025-02-01T00:00:00.000Z", projectId="prj-0")
    env.put_job("theirs-2", user=OTHER, createdAt="2025-02-02T00:00:00.000Z")
    return ids


def test_list_shows_only_the_callers_jobs_newest_first(aws):
    ids = seed_jobs(aws)
    answer = call("GET", "/jobs")
    assert answer.status == 200
    assert [j["jobId"] for j in answer.body["items"]] == list(reversed(ids))
    assert answer.body["nextCursor"] is None


def test_list_by_project_shows_only_the_callers_jobs(aws):
    seed_jobs(aws)
    answer = call("GET", "/jobs", query={"projectId": "prj-0"})
    assert [j["jobId"] for j in answer.body["items"]] == ["job4", "job2", "job0"]


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5", ""])
def test_list_limit_must_be_1_to_100(aws, limit):
    error = assert_error(call("GET", "/jobs", query={"limit": limit}), 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["query.limit"]


@pytest.mark.parametrize("limit", ["1", "100"])
def test_list_limit_bounds_are_accepted(aws, limit):
    seed_jobs(aws)
    answer = call("GET", "/jobs", query={"limit": limit})
    assert answer.status == 200
    assert len(answer.body["items"]) == min(int(limit), 5)


@pytest.mark.parametrize("limit", ["²", "9" * 5000])
def test_list_limit_of_odd_digits_is_a_validation_error(aws, limit):
    assert_error(call("GET", "/jobs", query={"limit": limit}), 400, "ValidationError")


@pytest.mark.parametrize("status", [None, "RUNNING"])
def test_pagination_returns_every_job_once(aws, status):
    seed_jobs(aws)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {}), **({"status": status} if status else {})}
        answer = call("GET", "/jobs", query=query)
        assert answer.status == 200
        assert len(answer.body["items"]) <= 2
        seen += [j["jobId"] for j in answer.body["items"]]
        cursor = answer.body["nextCursor"]
        pages += 1
        if not cursor or pages > 10:
            break
    expected = ["job4", "job3", "job2", "job1", "job0"] if status is None else ["job4", "job1"]
    assert seen == expected


def cursor_of(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_a_tampered_cursor_is_refused(aws):
    seed_jobs(aws)
    cursor = call("GET", "/jobs", query={"limit": "2"}).body["nextCursor"]
    assert cursor
    key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    tampered = [
        cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:] + "!!",
        "not base64 at all ***",
        cursor_of({**key, "userId": OTHER}),  # someone else's listing
        cursor_of({**key, "extra": "x"}),
        cursor_of([key]),
        cursor_of({**key, "createdAt": 5}),
        "x" * 3000,
    ]
    for bad in tampered:
        error = assert_error(call("GET", "/jobs", query={"cursor": bad}), 400, "ValidationError")
        assert [d["path"] for d in error["details"]] == ["query.cursor"]


def test_a_cursor_of_another_listing_is_refused(aws):
    seed_jobs(aws)
    cursor = call("GET", "/jobs", query={"limit": "1"}).body["nextCursor"]
    assert_error(call("GET", "/jobs", query={"cursor": cursor, "projectId": "prj-0"}), 400, "ValidationError")
    assert_error(call("GET", "/jobs", user=OTHER, query={"cursor": cursor}), 400, "ValidationError")


def test_status_filter(aws):
    seed_jobs(aws)
    answer = call("GET", "/jobs", query={"status": "SUCCEEDED"})
    assert [j["jobId"] for j in answer.body["items"]] == ["job3", "job0"]
    assert all(j["status"] == "SUCCEEDED" for j in answer.body["items"])


@pytest.mark.parametrize("status", ["running", "DONE", ""])
def test_a_bad_status_is_refused(aws, status):
    error = assert_error(call("GET", "/jobs", query={"status": status}), 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["query.status"]


def test_a_bad_project_id_in_the_query_is_refused(aws):
    error = assert_error(call("GET", "/jobs", query={"projectId": "../x"}), 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["query.projectId"]


# --- GET /jobs/{jobId}/events ------------------------------------------------------------------


def test_events_after_n(aws):
    job = aws.put_job("job-ev")
    for i in range(4):
        publisher.publish(job, {"type": "job.log", "lines": [str(i)]})

    everything = call("GET", "/jobs/job-ev/events")
    assert [e["seq"] for e in everything.body["items"]] == [1, 2, 3, 4]
    after = call("GET", "/jobs/job-ev/events", query={"after": "2"})
    assert after.status == 200
    assert [e["seq"] for e in after.body["items"]] == [3, 4]
    assert after.body["items"] == everything.body["items"][2:]
    assert call("GET", "/jobs/job-ev/events", query={"after": "4"}).body["items"] == []


@pytest.mark.parametrize("after", ["-1", "x", "1.0", ""])
def test_events_after_must_be_a_non_negative_integer(aws, after):
    aws.put_job("job-ev")
    error = assert_error(call("GET", "/jobs/job-ev/events", query={"after": after}), 400, "ValidationError")
    assert [d["path"] for d in error["details"]] == ["query.after"]


@pytest.mark.parametrize("after", ["²", "1" + "0" * 40])
def test_events_after_of_odd_digits_is_a_validation_error(aws, after):
    aws.put_job("job-ev")
    assert_error(call("GET", "/jobs/job-ev/events", query={"after": after}), 400, "ValidationError")


def test_events_of_another_users_job_are_not_found(aws):
    job = aws.put_job("job-ev")
    publisher.publish(job, {"type": "job.log", "lines": ["secret"]})
    assert_error(call("GET", "/jobs/job-ev/events", user=OTHER), 404, "NotFound")


# --- DELETE /jobs/{jobId} ----------------------------------------------------------------------


def test_cancel_a_running_job(aws):
    started = create("cancel-me").body
    job_id = started["jobId"]

    answer = call("DELETE", f"/jobs/{job_id}")

    assert answer.status == 202
    assert answer.body["status"] == "CANCELLED"
    assert answer.body["error"]["code"] == "Cancelled"
    assert jobs.get(job_id)["status"] == "CANCELLED"
    finished = [e for e in aws.events(job_id) if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["status"] == "CANCELLED"
    execution = aws.client("stepfunctions").describe_execution(executionArn=started["executionArn"])
    assert execution["status"] == "ABORTED"

    again = assert_error(call("DELETE", f"/jobs/{job_id}"), 409, "Conflict")
    assert again["message"]
    assert len([e for e in aws.events(job_id) if e["type"] == "job.finished"]) == 1


def test_cancel_a_job_whose_execution_is_gone(aws):
    aws.put_job("job-noexec")  # its execution ARN names nothing in Step Functions
    assert call("DELETE", "/jobs/job-noexec").status == 202
    assert jobs.get("job-noexec")["status"] == "CANCELLED"


def test_cancel_a_finished_job_is_a_conflict(aws):
    job = aws.put_job("job-done")
    publisher.finish(job, "SUCCEEDED", result={"projectId": "prj-job-done"})
    assert_error(call("DELETE", "/jobs/job-done"), 409, "Conflict")
    assert jobs.get("job-done")["status"] == "SUCCEEDED"
    assert len(aws.events("job-done")) == 1


def test_cancel_another_users_job_is_not_found(aws):
    aws.put_job("job-theirs", user=OTHER)
    assert_error(call("DELETE", "/jobs/job-theirs"), 404, "NotFound")
    assert jobs.get("job-theirs")["status"] == "RUNNING"


# --- GET /projects/{projectId} -----------------------------------------------------------------


def put_project(env: Any, project_id: str, user: str) -> None:
    env.table("PROJECTS_TABLE").put_item(
        Item={
            **projects.project_key(project_id),
            "projectId": project_id,
            "userId": user,
            "name": "site",
            "template": "web-app",
            "s3Prefix": f"projects/{project_id}/",
            "workspace": f"/projects/{project_id}",
            "defaultBranch": "main",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "jobId": "job-1",
        }
    )


def test_get_own_project(aws):
    put_project(aws, "prj-mine", USER)
    answer = call("GET", "/projects/prj-mine")
    assert answer.status == 200
    assert answer.body == {
        "projectId": "prj-mine",
        "name": "site",
        "template": "web-app",
        "repoUrl": None,
        "s3Prefix": "projects/prj-mine/",
        "workspace": "/projects/prj-mine",
        "defaultBranch": "main",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "jobId": "job-1",
        "status": "active",
    }


def test_another_users_project_is_not_found(aws):
    put_project(aws, "prj-theirs", OTHER)
    assert_error(call("GET", "/projects/prj-theirs"), 404, "NotFound")
    assert_error(call("GET", "/projects/prj-nothing"), 404, "NotFound")


# --- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("PATCH", "/jobs"), ("GET", "/"), ("PUT", "/projects/x")]
)
def test_unknown_routes_are_not_found(aws, method, path):
    assert_error(call(method, path), 404, "NotFound")
