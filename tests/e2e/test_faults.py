"""Jobs under injected faults lose nothing: ``longrun local up --faults`` at high rates.

A cloud of its own (the session's stays fault-free) throttles and fails Lambda invokes, throttles
DynamoDB, drops WebSocket connections and kills build workers mid-build. Clients do what a user's
client does: repeat a failed call that is safe to repeat, and watch each job over a WebSocket that
is made again when it goes away. Every job must still end once, with one ``job.finished``, its
events contiguous from 1, and with a status its faults explain; and the fault counts must show
that each fault really happened.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from longrun.local.faults import read_counts, to_spec
from tests.conftest import LocalCloud, started_local_cloud

RATES = {"lambda.throttle": 0.1, "lambda.error": 0.05, "ws.gone": 0.2, "dynamodb.throttle": 0.05, "worker.kill": 0.15}
# A seed whose worker.kill stream strikes at its first draw: the first second a worker spends on a
# build kills it, so the test always sees a build survive a lost worker.
SEED = 30
HEARTBEAT_SECONDS = 3
USERS = [f"faulty-{n}" for n in range(4)]
CREATE_JOBS = 16
BUILD_JOBS = 4
# Errors that faults explain: the Lambda service refusing past a step's Retry, a DynamoDB throttle
# past the SDK's retries (a step's TransientError), a build worker lost on every attempt.
FAULT_ERRORS = {
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "TransientError",
    "ProvisionedThroughputExceededException",
    "States.Timeout",
    "States.HeartbeatTimeout",
    "WorkerLost",  # build.asl.json's name for a build whose workers were lost on every attempt
}
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def faulty_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = ("--faults", to_spec(RATES), "--faults-seed", str(SEED),
               "--build-heartbeat-timeout", str(HEARTBEAT_SECONDS))  # fmt: skip
    with started_local_cloud(tmp_path_factory.mktemp("faulty-cloud"), *options) as cloud:
        yield cloud


@dataclass
class Run:
    user: str
    job: dict[str, Any]
    watched: list[dict[str, Any]]
    reconnections: int
    retried_calls: int


def _run(cloud: LocalCloud, user: str, job_type: str, params: dict[str, Any], project: str | None = None) -> Run:
    """Start a job as a careful client does (a key, so a failed POST can be repeated) and watch it end."""
    client = cloud.client(user)
    job: dict[str, Any] = {}
    try:
        job = client.start_job(job_type, params, project, idempotency_key=str(uuid.uuid4()))
        watched = list(client.watch(job["jobId"], timeout=75))
        return Run(user, client.job(job["jobId"]), watched, client.reconnections, client.retried_calls)
    except Exception as e:  # reported with the others below, so one failure does not hide the rest
        raise AssertionError(f"{job_type} job {job.get('jobId')} of {user}: the client failed: {e!r}") from e


def _check_ended_once(cloud: LocalCloud, run: Run) -> None:
    job_id = run.job["jobId"]
    stored = cloud.client(run.user).events(job_id)
    seqs = [e["seq"] for e in stored]
    assert seqs == list(range(1, len(stored) + 1)), f"job {job_id}: events not contiguous from 1: {seqs}"
    finished = [e for e in stored if e["type"] == "job.finished"]
    assert len(finished) == 1 and stored[-1] is finished[0], f"job {job_id}: {len(finished)} job.finished"
    assert [(e["seq"], e["type"]) for e in run.watched] == [(e["seq"], e["type"]) for e in stored]
    assert run.job["status"] in FINAL and finished[0]["status"] == run.job["status"]
    if run.job["status"] != "SUCCEEDED":
        error = run.job.get("error") or {}
        explained = error.get("code") in FAULT_ERRORS or any(code in error.get("message", "") for code in FAULT_ERRORS)
        assert explained, f"job {job_id} ended {run.job['status']} for a reason no fault explains: {error}"


def test_jobs_under_faults_each_end_once_with_one_finished_and_every_fault_happened(faulty_cloud):
    with ThreadPoolExecutor(max_workers=8) as pool:
        creates = list(
            pool.map(
                lambda n: _run(
                    faulty_cloud, USERS[n % len(USERS)], "create-project", {"name": f"f-{uuid.uuid4().hex[:10]}"}
                ),
                range(CREATE_JOBS),
            )
        )
        projects = [r for r in creates if r.job["status"] == "SUCCEEDED"][:BUILD_JOBS]
        builds = list(
            pool.map(
                lambda r: _run(faulty_cloud, r.user, "build", {"command": "echo begun; sleep 2; echo done"},
                               r.job["projectId"]),
                projects,
            )
        )  # fmt: skip
    runs = creates + builds
    for run in runs:
        _check_ended_once(faulty_cloud, run)

    # Retry policies absorb transient errors: at these rates nearly every job still succeeds.
    succeeded = sum(r.job["status"] == "SUCCEEDED" for r in creates)
    assert succeeded >= CREATE_JOBS - 2, [(r.job["status"], r.job.get("error")) for r in creates]
    assert len(builds) == BUILD_JOBS

    # The subscribers saw their connections go away, and came back; the REST front answered some
    # calls 5xx (API Gateway's answer for a refused integration), and the clients repeated them.
    assert sum(r.reconnections for r in runs) >= 1
    assert sum(r.retried_calls for r in runs) >= 1

    time.sleep(1.5)  # the counts are written every second
    counts = read_counts(faulty_cloud.data_dir)
    assert counts["rates"] == RATES and counts["seed"] == SEED
    for name in RATES:
        assert counts["injected"][name] >= 1, f"{name} never happened: {counts}"
