"""``Start Job`` events on the stack's bus start jobs; every event that cannot is kept with its reason.

Driven as another system and an operator would: PutEvents on the bus named by the stack's
``EventBusName`` output, the REST API to see the jobs, ``longrun ops dead-letters`` to read what
started nothing. The local cloud trusts the source ``longrun.local`` (``--trusted-source``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from tests.e2e.helpers import http, operator_env, stack_outputs, unique_name, wait_for_status

TRUSTED = "longrun.local"


def put(cloud: Any, detail: Any, source: str = TRUSTED, detail_type: str = "Start Job") -> str:
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": stack_outputs(cloud)["EventBusName"],
    }
    answer = cloud.aws_client("events").put_events(Entries=[entry])
    assert answer["FailedEntryCount"] == 0, answer
    return answer["Entries"][0]["EventId"]


def jobs_of(cloud: Any, user: str) -> list[dict[str, Any]]:
    return http(cloud, "GET", "/jobs?limit=100", user).json()["items"]


def wait_for_jobs(cloud: Any, user: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = jobs_of(cloud, user)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{user} has {len(jobs_of(cloud, user))} jobs, not {count}")


def dead_letters(cloud: Any, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        [sys.executable, "-m", "longrun.cli", "ops", "dead-letters", "--json", *extra],
        env=operator_env(cloud), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def letter_for(cloud: Any, user: str, timeout: float = 30) -> dict[str, Any]:
    """The dead letter of an event that named ``user`` (users are unique per test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, letters = dead_letters(cloud)
        mine = [lt for lt in letters if isinstance(lt["event"], dict) and lt["event"]["detail"].get("userId") == user]
        if mine:
            assert len(mine) == 1, mine
            return mine[0]
        time.sleep(0.5)
    raise AssertionError(f"no dead letter for {user}")


def test_a_trusted_start_job_event_starts_a_job_that_finishes(local_cloud):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    name = unique_name("ev")
    put(local_cloud, {"userId": user, "type": "create-project", "params": {"name": name}})
    [job] = wait_for_jobs(local_cloud, user, 1)
    assert job["type"] == "create-project" and job["executionArn"].endswith(job["jobId"][:8])
    finished = wait_for_status(local_cloud, job["jobId"], user)
    assert finished["status"] == "SUCCEEDED", finished
    project = http(local_cloud, "GET", f"/projects/{finished['projectId']}", user).json()
    assert project["name"] == name
    # Another user sees nothing of it: the job is the named user's, as POST /jobs would make it.
    assert http(local_cloud, "GET", f"/jobs/{job['jobId']}", f"{user}-other").status_code == 404


def test_the_same_event_delivered_twice_makes_one_job(local_cloud):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    detail = {"userId": user, "type": "create-project", "params": {"name": unique_name("ev")}, "idempotencyKey": "k1"}
    put(local_cloud, detail)
    put(local_cloud, detail)  # EventBridge delivers at least once; a sender may put again
    [job] = wait_for_jobs(local_cloud, user, 1)
    assert wait_for_status(local_cloud, job["jobId"], user)["status"] == "SUCCEEDED"
    time.sleep(1)
    assert len(jobs_of(local_cloud, user)) == 1
    _, letters = dead_letters(local_cloud)
    assert not [lt for lt in letters if isinstance(lt["event"], dict) and lt["event"]["detail"].get("userId") == user]


def test_an_untrusted_source_starts_nothing_and_is_kept_with_its_reason(local_cloud):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    event_id = put(local_cloud, {"userId": user, "type": "create-project", "params": {"name": "x-y-z"}},
                   source="com.example.intruder")  # fmt: skip
    letter = letter_for(local_cloud, user)
    assert letter["reason"]["code"] == "UntrustedSource"
    assert "com.example.intruder" in letter["reason"]["message"]
    assert letter["event"]["id"] == event_id and letter["event"]["source"] == "com.example.intruder"
    assert jobs_of(local_cloud, user) == []


@pytest.mark.parametrize(
    ("detail", "code", "paths"),
    [
        ({"type": "create-project", "params": {"name": "ok-name"}}, "ValidationError", ["detail.userId"]),
        ({"userId": "u", "type": "create-project", "params": {"name": "NO"}, "extra": 1}, "ValidationError",
         ["detail.extra"]),
        ({"userId": "u", "type": "create-project", "params": {"name": "NO"}}, "ValidationError",
         ["detail.params.name"]),
        ({"userId": "u", "type": "teleport", "params": {}}, "ValidationError", ["detail.type"]),
        ({"userId": "u", "type": "git-clone", "params": {"repoUrl": "https://example.com/r.git"},
          "projectId": "prj-nobodys"}, "NotFound", []),
        ({"userId": "u", "type": "git-clone", "projectId": "prj-x",
          "params": {"repoUrl": "http://169.254.169.254/latest/meta-data"}}, "ValidationError",
         ["detail.params.repoUrl"]),
    ],
    ids=["no-user", "unknown-field", "bad-params", "unknown-type", "not-their-project", "hostile-url"],
)  # fmt: skip
def test_an_invalid_event_starts_nothing_and_is_kept_with_its_reason(local_cloud, detail, code, paths):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    if "userId" in detail:
        detail = {**detail, "userId": user}
    marker = {"marker": user}  # an event without a userId is found by what else it carries
    put(local_cloud, {**detail, **({} if "userId" in detail else {"params": {**detail["params"], **marker}})})
    deadline, letter = time.monotonic() + 30, None
    while letter is None and time.monotonic() < deadline:
        _, letters = dead_letters(local_cloud)
        letter = next((lt for lt in letters if user in json.dumps(lt["event"])), None)
        time.sleep(0.3)
    assert letter is not None, "the event was not dead-lettered"
    assert letter["reason"]["code"] == code, letter
    assert [d["path"] for d in letter["reason"].get("details", [])][: len(paths)] == paths
    assert jobs_of(local_cloud, user) == []


def test_dead_letters_redrive_puts_them_back_and_loses_nothing(local_cloud):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    put(local_cloud, {"userId": user, "type": "create-project", "params": {"name": "a-b-c"}}, source="com.example.ci")
    first = letter_for(local_cloud, user)
    status, redriven = dead_letters(local_cloud, "--redrive")
    assert status == 0
    mine = [lt for lt in redriven if lt["messageId"] == first["messageId"]]
    assert mine and mine[0]["redrive"]["deleted"] is True
    # The source is still untrusted: the event comes back, once, with its reason; it is never lost.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, letters = dead_letters(local_cloud)
        again = [lt for lt in letters if lt["event"]["detail"].get("userId") == user]
        if again and again[0]["messageId"] != first["messageId"]:
            break
        time.sleep(0.5)
    assert len(again) == 1 and again[0]["reason"]["code"] == "UntrustedSource"
    assert again[0]["event"]["detail"] == first["event"]["detail"]


def test_dead_letters_table_for_a_terminal(local_cloud):
    user = f"ev-{uuid.uuid4().hex[:8]}"
    put(local_cloud, {"userId": user, "type": "sync", "params": {}}, source="com.example.table")
    letter_for(local_cloud, user)
    done = subprocess.run([sys.executable, "-m", "longrun.cli", "ops", "dead-letters"],
                          env={**operator_env(local_cloud), "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "UntrustedSource" in done.stdout and "com.example.table sync" in done.stdout
