"""``POST /jobs/{jobId}/retry``: a failed job goes on from the step that failed, as the same job.

The failure is real: the test's git server has an outage (503) while a clone runs, so git fails
in the Clone step with an error the workflow does not catch; the execution fails there and the
execution-status trigger closes the job. When the server is back, a retry redrives the execution
(the local cloud's RedriveExecution) from Clone, and the job succeeds under the same id, its
events going on from the same ``seq``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.e2e.helpers import create_project, http, operator_env, recv_until, wait_for_status, ws_connect
from tests.support.git_server import GitServer, make_repository

USER = "rita"


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("git-retry")
    make_repository(root, "flaky.git", {"README.md": "flaky\n"})
    server = GitServer(root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(local_cloud):
    return create_project(local_cloud, USER)


def ops_history(cloud, job_id: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "longrun.cli", "ops", "history", job_id, "--json"],
                          env=operator_env(cloud), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_failed_clone_retried_goes_on_from_the_step_that_failed(local_cloud, git_server, project):
    git_server.down.add("flaky.git")
    body = {"type": "git-clone", "projectId": project, "params": {"repoUrl": f"{git_server.url}/flaky.git"}}
    started = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert started.status_code == 202, started.text
    job_id = started.json()["jobId"]
    failed = wait_for_status(local_cloud, job_id, USER)
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "GitFailed", failed
    first_events = http(local_cloud, "GET", f"/jobs/{job_id}/events", USER).json()["items"]
    assert [e["type"] for e in first_events].count("job.finished") == 1

    # The operator's view: the execution failed at Clone, its error and cause there.
    history = ops_history(local_cloud, job_id)
    assert history["status"] == "FAILED" and history["error"] == "GitFailed"
    clone = [s for s in history["states"] if s["name"] == "Clone"]
    assert len(clone) == 1 and clone[0]["outcome"] == "failed" and clone[0]["errors"][-1]["error"] == "GitFailed"
    assert not [s for s in history["states"] if s["name"].startswith("Notify")], "no Catch took it"

    git_server.down.discard("flaky.git")
    with ws_connect(local_cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job_id}))
        recv_until(ws, lambda m: m.get("type") == "subscribed")
        retried = http(local_cloud, "POST", f"/jobs/{job_id}/retry", USER)
        assert retried.status_code == 202, retried.text
        assert retried.json()["jobId"] == job_id and retried.json()["status"] == "RUNNING"
        pushed = recv_until(ws, lambda m: m.get("type") == "job.finished" and m.get("status") == "SUCCEEDED")
    done = wait_for_status(local_cloud, job_id, USER)
    assert done["status"] == "SUCCEEDED" and done["result"]["branch"], done
    assert (local_cloud.efs_root() / "projects" / project / "README.md").read_text() == "flaky\n"

    events = http(local_cloud, "GET", f"/jobs/{job_id}/events", USER).json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "seq goes on, contiguous"
    retry_event = next(e for e in events if e.get("step") == "retry")
    assert retry_event["seq"] == len(first_events) + 1 and retry_event["detail"] == {"attempt": 1}, events
    assert [e["type"] for e in events].count("job.finished") == 2, "one per attempt"
    assert [m for m in pushed if m.get("type") == "job.finished"][-1]["seq"] == events[-1]["seq"]

    history = ops_history(local_cloud, job_id)
    assert history["status"] == "SUCCEEDED" and len(history["redrives"]) == 1
    clones = [s for s in history["states"] if s["name"] == "Clone"]
    assert [(s["redrive"], s["outcome"]) for s in clones] == [(0, "failed"), (1, "succeeded")]
    assert [s["name"] for s in history["states"]].count("Clone") == 2


def test_what_cannot_be_retried_says_why(local_cloud, git_server, project):
    # Succeeded: nothing to retry.
    body = {"type": "git-clone", "projectId": project, "params": {"repoUrl": f"{git_server.url}/flaky.git"}}
    ok = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert wait_for_status(local_cloud, ok.json()["jobId"], USER)["status"] == "SUCCEEDED"
    answer = http(local_cloud, "POST", f"/jobs/{ok.json()['jobId']}/retry", USER)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "Conflict"
    assert "SUCCEEDED" in answer.json()["error"]["message"]
    # A failure the workflow caught and told: a retry would meet it again.
    missing = http(local_cloud, "POST", "/jobs", USER, json={"type": "git-clone", "projectId": project,
                   "params": {"repoUrl": "https://no-such-host.invalid/r.git"}})  # fmt: skip
    job = wait_for_status(local_cloud, missing.json()["jobId"], USER)
    assert job["status"] == "FAILED" and job["error"]["code"] == "HostNotFound", job
    answer = http(local_cloud, "POST", f"/jobs/{job['jobId']}/retry", USER)
    assert answer.status_code == 409 and "HostNotFound" in answer.json()["error"]["message"]
    assert http(local_cloud, "GET", f"/jobs/{job['jobId']}", USER).json()["status"] == "FAILED"
    # Someone else's job, or none: 404, never a hint that it exists.
    assert http(local_cloud, "POST", f"/jobs/{job['jobId']}/retry", "mallory").status_code == 404
    assert http(local_cloud, "POST", "/jobs/0123456789abcdef/retry", USER).status_code == 404


def test_a_running_job_is_not_retried(local_cloud, git_server, project):
    git_server.delay["flaky.git"] = 1.0
    try:
        started = http(local_cloud, "POST", "/jobs", USER, json={"type": "git-clone", "projectId": project,
                       "params": {"repoUrl": f"{git_server.url}/flaky.git"}})  # fmt: skip
        answer = http(local_cloud, "POST", f"/jobs/{started.json()['jobId']}/retry", USER)
        assert answer.status_code == 409 and "RUNNING" in answer.json()["error"]["message"]
        time.sleep(0.1)
    finally:
        git_server.delay.pop("flaky.git", None)
    wait_for_status(local_cloud, started.json()["jobId"], USER)
