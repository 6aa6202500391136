"""The per-user limit of concurrent jobs through the real REST and WebSocket fronts.

A local cloud of its own, started as a user would with ``--max-jobs-per-user 2`` (the session's
keeps the default of 20) and ``--build-workers 0``, so that builds wait in their queue and stay
``RUNNING`` for as long as the test needs: nothing here depends on timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, LocalCloud, started_local_cloud
from tests.e2e.helpers import create_project, http, recv_until, start_create_project, ws_connect

pytestmark = pytest.mark.e2e

LIMIT = 2


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    base = tmp_path_factory.mktemp("quota-cloud")
    with started_local_cloud(base, "--max-jobs-per-user", str(LIMIT), "--build-workers", "0") as cloud:
        yield cloud


def _error_schema() -> dict[str, Any]:
    document = json.loads((Path(REPO) / "schemas" / "openapi.json").read_text())
    return {**document["components"]["schemas"]["Error"], "components": document["components"]}


def _build(cloud: LocalCloud, project_id: str, user: str) -> Any:
    body = {"type": "build", "projectId": project_id, "params": {"command": "true"}}
    return http(cloud, "POST", "/jobs", user, json=body)


def test_over_the_limit_is_429_and_a_finished_job_frees_its_place(small_cloud):
    user = "quota-user"
    project_id = create_project(small_cloud, user)  # a job that ran and ended: it holds no place
    first, second = (_build(small_cloud, project_id, user) for _ in range(LIMIT))
    assert first.status_code == second.status_code == 202, (first.text, second.text)

    refused = _build(small_cloud, project_id, user)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    jsonschema.validate(refused.json(), _error_schema())
    assert refused.json()["error"]["code"] == "Throttled"
    assert http(small_cloud, "GET", "/jobs", user).json()["items"][0]["jobId"] == second.json()["jobId"], (
        "a refused start wrote no job"
    )
    start_create_project(small_cloud, "someone-else")  # the limit is per user: others still start jobs

    with ws_connect(small_cloud, user) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": first.json()["jobId"]}))
        assert http(small_cloud, "DELETE", f"/jobs/{first.json()['jobId']}", user).status_code == 202
        recv_until(ws, lambda m: m.get("type") == "job.finished")
        # Told job.finished, the user starts the next job at once: its place was given back first.
        again = _build(small_cloud, project_id, user)
    assert again.status_code == 202, again.text

    for job in (second.json(), again.json()):
        assert http(small_cloud, "DELETE", f"/jobs/{job['jobId']}", user).status_code == 202
    assert _build(small_cloud, project_id, user).status_code == 202


def test_an_idempotent_repeat_at_the_limit_gets_its_job_not_429(small_cloud):
    user = "quota-repeat"
    project_id = create_project(small_cloud, user)
    started = [_build(small_cloud, project_id, user) for _ in range(LIMIT - 1)]
    body = {"type": "build", "projectId": project_id, "params": {"command": "true"}}
    keyed = http(small_cloud, "POST", "/jobs", user, json=body, headers={"Idempotency-Key": "the-last-place"})
    repeat = http(small_cloud, "POST", "/jobs", user, json=body, headers={"Idempotency-Key": "the-last-place"})
    assert keyed.status_code == repeat.status_code == 202, (keyed.text, repeat.text)
    assert repeat.json()["jobId"] == keyed.json()["jobId"]
    assert _build(small_cloud, project_id, user).status_code == 429
    for job in [*started, keyed]:
        http(small_cloud, "DELETE", f"/jobs/{job.json()['jobId']}", user)
