"""``Idempotency-Key``: 20 concurrent submissions make one job; another body with the key is 409."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.helpers import http, unique_name


def test_twenty_concurrent_submissions_with_one_key_make_one_job(local_cloud):
    key = str(uuid.uuid4())
    body = {"type": "create-project", "params": {"name": unique_name("idem")}}

    def submit(_: int):
        return http(local_cloud, "POST", "/jobs", "erin", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(submit, range(20)))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses if r.status_code != 202]
    assert len({r.json()["jobId"] for r in responses}) == 1
    job_id = responses[0].json()["jobId"]
    listed = http(local_cloud, "GET", "/jobs?limit=100", "erin").json()["items"]
    assert sum(1 for j in listed if j["jobId"] == job_id) == 1

    other = http(
        local_cloud,
        "POST",
        "/jobs",
        "erin",
        json={**body, "params": {"name": unique_name()}},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "Conflict"

    # keys belong to their user: the same key from someone else is a new job
    someone_else = http(local_cloud, "POST", "/jobs", "frank", json=body, headers={"Idempotency-Key": key})
    assert someone_else.status_code == 202 and someone_else.json()["jobId"] != job_id


def test_bad_idempotency_key_is_400(local_cloud):
    response = http(
        local_cloud,
        "POST",
        "/jobs",
        json={"type": "create-project", "params": {"name": unique_name()}},
        headers={"Idempotency-Key": "x" * 200},
    )
    assert response.status_code == 400
