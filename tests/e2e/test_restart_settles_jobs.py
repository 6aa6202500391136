"""A job running when the local cloud stops ends once after the restart; finished executions keep their history.

One data dir, two ``longrun local up`` runs as a developer starts them (``started_local_cloud`` twice
on one base; the first stopped with SIGTERM). In the first, a build sleeps in a worker (its
execution ``RUNNING``) and the user's one place in the quota (``--max-jobs-per-user 1``) is taken.
After the restart the build's job has exactly one final status with ``LocalCloudStopped``, one
``job.finished`` reaches a WebSocket subscriber, the user can start a git job on the project again,
the create-project job's execution history is served as before, and ``POST /jobs/{id}/retry``
resumes the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import LocalCloud, started_local_cloud
from tests.e2e.helpers import (
    http,
    operator_env,
    recv_json,
    settled_execution_status,
    start_create_project,
    wait_for_status,
    ws_connect,
)

pytestmark = pytest.mark.e2e

USER = "restart-user"
OPTIONS = ("--max-jobs-per-user", "1", "--build-heartbeat-timeout", "3")
# Sleeps until the test leaves .resume in the workspace: the first run is cut, the retried one ends.
COMMAND = "test -e .resume || sleep 600; echo resumed after the restart"


def _ops_history(cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "longrun.cli", "ops", "history", job_id, "--json"],
                          env=operator_env(cloud), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _events(cloud: LocalCloud, job_id: str) -> list[dict[str, Any]]:
    return http(cloud, "GET", f"/jobs/{job_id}/events", USER).json()["items"]


def _wait_for_build_start(cloud: LocalCloud, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.get("step") == "build" and e.get("status") == "STARTED" for e in _events(cloud, job_id)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"no worker started the build of {job_id}: {_events(cloud, job_id)}")


def _git_branch(cloud: LocalCloud, project_id: str, name: str) -> Any:
    body = {"type": "git-branch", "projectId": project_id, "params": {"name": name}}
    return http(cloud, "POST", "/jobs", USER, json=body)


def test_a_build_running_at_the_stop_ends_once_after_the_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("restart-settles")
    with started_local_cloud(base, *OPTIONS) as cloud:
        created = start_create_project(cloud, USER)
        assert wait_for_status(cloud, created["jobId"], USER)["status"] == "SUCCEEDED"
        project_id = created["projectId"]
        sfn = cloud.aws_client("stepfunctions")
        assert settled_execution_status(sfn, created["executionArn"]) == "SUCCEEDED"  # its last events are in
        history_before = sfn.get_execution_history(executionArn=created["executionArn"])["events"]
        ops_before = _ops_history(cloud, created["jobId"])
        started = http(cloud, "POST", "/jobs", USER,
                       json={"type": "build", "projectId": project_id, "params": {"command": COMMAND}})  # fmt: skip
        assert started.status_code == 202, started.text
        build = started.json()
        _wait_for_build_start(cloud, build["jobId"])
        assert sfn.describe_execution(executionArn=build["executionArn"])["status"] == "RUNNING"
        assert _git_branch(cloud, project_id, "while-it-builds").status_code == 429, "the user's one place is taken"
        workspace = cloud.efs_root() / "projects" / project_id
    # SIGTERM: the build's worker and execution are cut mid-build.

    with started_local_cloud(base, *OPTIONS) as cloud:
        with ws_connect(cloud, USER) as ws:
            ws.send(json.dumps({"action": "subscribe", "jobId": build["jobId"]}))
            received: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while not any(m.get("type") == "job.finished" for m in received):
                received.append(recv_json(ws, max(0.1, deadline - time.monotonic())))
            quiet_until = time.monotonic() + 3
            while time.monotonic() < quiet_until:  # no second job.finished follows
                try:
                    received.append(recv_json(ws, max(0.1, quiet_until - time.monotonic())))
                except TimeoutError:
                    break
        finished = [m for m in received if m.get("type") == "job.finished"]
        assert len(finished) == 1, received
        assert finished[0]["status"] == "FAILED" and finished[0]["error"]["code"] == "LocalCloudStopped"

        job = http(cloud, "GET", f"/jobs/{build['jobId']}", USER).json()
        assert job["status"] == "FAILED", job
        assert job["error"]["code"] == "LocalCloudStopped" and "local cloud stopped" in job["error"]["message"]
        assert [e["type"] for e in _events(cloud, build["jobId"])].count("job.finished") == 1
        sfn = cloud.aws_client("stepfunctions")
        execution = sfn.describe_execution(executionArn=build["executionArn"])
        assert (execution["status"], execution["error"]) == ("ABORTED", "LocalCloudStopped")
        assert sfn.get_execution_history(executionArn=build["executionArn"])["events"][-1]["type"] == "ExecutionAborted"

        # The finished job's execution: the same history, through the API and through `longrun ops history`.
        assert sfn.get_execution_history(executionArn=created["executionArn"])["events"] == history_before
        assert _ops_history(cloud, created["jobId"]) == ops_before

        # The quota's place is back and the project free: a git job on it is accepted, and ends.
        branch = _git_branch(cloud, project_id, "after-restart")
        assert branch.status_code == 202, branch.text
        assert wait_for_status(cloud, branch.json()["jobId"], USER)["status"] in ("SUCCEEDED", "FAILED")
        time.sleep(1)  # nothing of the cut build came back meanwhile (its stale message is dropped)
        assert http(cloud, "GET", f"/jobs/{build['jobId']}", USER).json()["status"] == "FAILED"
        assert [e["type"] for e in _events(cloud, build["jobId"])].count("job.finished") == 1

        # A retry redrives the aborted execution: the build runs again, and now ends.
        (workspace / ".resume").write_text("")
        retried = http(cloud, "POST", f"/jobs/{build['jobId']}/retry", USER)
        assert retried.status_code == 202, retried.text
        done = wait_for_status(cloud, build["jobId"], USER, timeout=120)
        assert done["status"] == "SUCCEEDED", done
        events = _events(cloud, build["jobId"])
        assert any(e.get("step") == "retry" for e in events), "the retry told the subscribers"
        assert [e["type"] for e in events].count("job.finished") == 2, "the cut attempt's end, then the retried one's"
        logged = [line for e in events if e["type"] == "job.log" for line in e["lines"]]
        assert any("resumed after the restart" in line for line in logged), logged
