"""The local cloud keeps its data across restarts: a clean stop loses nothing, a SIGKILL at most the bound.

Through the contract only (REST, WebSocket, pre-signed URLs, ``longrun ops history``), as a
developer who stops their cloud every evening sees it. Three clouds on one data dir, in order:

1. a project made by a create-project job (its ``job.finished`` seen on the WebSocket) and a file
   uploaded; then SIGTERM;
2. the same data dir: the project record, the job with its final status, the file byte for byte and
   the execution's history are all there; then a second file is uploaded, the crash bound waited,
   and the whole process group SIGKILLed;
3. the same data dir again: the second file is there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from longrun.local.state.keeper import CRASH_BOUND_SECONDS
from tests.conftest import started_local_cloud
from tests.e2e.helpers import http, operator_env, recv_until, unique_name, ws_connect
from tests.e2e.test_sync import settle, upload

USER = "syl"  # the uploads helper signs as this user
BODY = bytes(range(256)) * 1024 + b"\x00tail"  # 256 KiB and a bit: every byte value, in order
AFTER_CRASH = b"written 2 s before a SIGKILL\n" * 100


def _download(cloud: Any, project_id: str, path: str) -> bytes:
    ticket = http(cloud, "POST", f"/projects/{project_id}/downloads", USER, json={"path": path})
    assert ticket.status_code == 200, ticket.text
    got = httpx.request(ticket.json()["method"], ticket.json()["url"], timeout=30)
    assert got.status_code == 200, got.text
    return got.content


def _jobs(cloud: Any, project_id: str) -> dict[str, dict[str, Any]]:
    response = http(cloud, "GET", f"/jobs?projectId={project_id}&limit=100", USER)
    assert response.status_code == 200, response.text
    return {job["jobId"]: job for job in response.json()["items"]}


def _history(cloud: Any, job_id: str) -> dict[str, Any]:
    run = subprocess.run([sys.executable, "-m", "longrun.cli", "ops", "history", job_id, "--json"],
                         capture_output=True, text=True, env=operator_env(cloud), timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_project_its_jobs_files_and_history_survive_a_restart_and_a_sigkill_loses_at_most_the_bound(
    tmp_path: Path,
) -> None:
    # 1. Work, then a clean stop (the context's exit sends SIGTERM and waits).
    with started_local_cloud(tmp_path) as cloud:
        with ws_connect(cloud, USER) as ws:
            body = {"type": "create-project", "params": {"name": unique_name("restart")}}
            job = http(cloud, "POST", "/jobs", USER, json=body).json()
            ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
            finished = recv_until(ws, lambda m: m.get("type") == "job.finished" and m.get("jobId") == job["jobId"],
                                  timeout=90)[-1]  # fmt: skip
        assert finished["status"] == "SUCCEEDED", finished
        project_id = job["projectId"]
        upload(cloud, project_id, "docs/data.bin", BODY)
        settle(cloud, project_id)  # the upload's sync job has ended too: no job runs at the stop
        project = http(cloud, "GET", f"/projects/{project_id}", USER).json()
        jobs = _jobs(cloud, project_id)
        history = _history(cloud, job["jobId"])
    assert jobs[job["jobId"]]["status"] == "SUCCEEDED" and len(jobs) >= 2

    # 2. The same data dir: everything is there; then a write, the bound, and a SIGKILL of every process.
    with started_local_cloud(tmp_path, new_session=True) as cloud:
        again = http(cloud, "GET", f"/projects/{project_id}", USER)
        assert again.status_code == 200, again.text
        assert again.json() == project
        assert http(cloud, "GET", f"/projects/{project_id}", "mallory").status_code == 404  # still only syl's
        assert _jobs(cloud, project_id) == jobs
        assert _download(cloud, project_id, "docs/data.bin") == BODY
        restored = _history(cloud, job["jobId"])
        assert restored["status"] == "SUCCEEDED" and restored["states"] == history["states"]

        upload(cloud, project_id, "after-crash.txt", AFTER_CRASH)
        time.sleep(CRASH_BOUND_SECONDS)
        os.killpg(cloud.process.pid, signal.SIGKILL)  # no process of the cloud gets to save anything
        cloud.process.wait(timeout=10)
    (tmp_path / "endpoints.json").unlink(missing_ok=True)  # the killed cloud could not remove it

    # 3. After the crash: the write made the bound before it is there.
    with started_local_cloud(tmp_path) as cloud:
        assert _download(cloud, project_id, "after-crash.txt") == AFTER_CRASH
        assert http(cloud, "GET", f"/projects/{project_id}", USER).json()["projectId"] == project_id
