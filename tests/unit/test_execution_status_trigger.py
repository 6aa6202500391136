"""The execution-status trigger against moto's tables: which events close which jobs, and only once."""

from __future__ import annotations

import json
from typing import Any

from core import jobs, launcher
from triggers import executions

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:longrun-build"


def _job(aws: Any) -> dict[str, Any]:
    job = launcher.new_job("job-1", "ursula", "build", "prj-1", {}, MACHINE)
    jobs.put_new(job)
    return job


def _detail(job: dict[str, Any], status: str, **more: Any) -> dict[str, Any]:
    return {"executionArn": job["executionArn"], "status": status, "input": json.dumps({"jobId": job["jobId"]}), **more}


def test_a_timed_out_execution_closes_its_job_once(aws: Any) -> None:
    job = _job(aws)
    assert executions.close(_detail(job, "TIMED_OUT")) is True
    assert executions.close(_detail(job, "TIMED_OUT")) is False, "a second event writes nothing"
    closed = jobs.get("job-1", consistent=True)
    assert closed["status"] == "TIMED_OUT" and closed["error"]["code"] == "ExecutionTimedOut"


def test_aborted_becomes_cancelled_and_a_failure_carries_its_error(aws: Any) -> None:
    job = _job(aws)
    assert executions.close(_detail(job, "FAILED", error="States.Runtime", cause="bad path"))
    closed = jobs.get("job-1", consistent=True)
    assert closed["status"] == "FAILED" and "States.Runtime" in closed["error"]["message"]
    assert "bad path" in closed["error"]["message"]
    other = launcher.new_job("job-2", "ursula", "build", "prj-1", {}, MACHINE)
    jobs.put_new(other)
    assert executions.close(_detail(other, "ABORTED"))
    assert jobs.get("job-2", consistent=True)["status"] == "CANCELLED"


def test_events_that_are_not_a_jobs_own_execution_change_nothing(aws: Any) -> None:
    job = _job(aws)
    assert not executions.close(_detail(job, "SUCCEEDED")), "only endings outside success"
    assert not executions.close({**_detail(job, "FAILED"), "executionArn": job["executionArn"] + "-child"})
    assert not executions.close({**_detail(job, "FAILED"), "input": "[1, 2]"}), "a Distributed Map child's input"
    assert not executions.close({**_detail(job, "FAILED"), "input": "not json"})
    assert not executions.close({**_detail(job, "FAILED"), "input": json.dumps({"jobId": "no-such-job"})})
    assert jobs.get("job-1", consistent=True)["status"] == "RUNNING"


def test_a_steps_own_uncaught_error_is_told_as_the_notify_step_tells_it(aws: Any) -> None:
    job = _job(aws)
    cause = json.dumps({"errorMessage": "git said: 503", "errorType": "GitFailed", "stackTrace": ["secret frame"]})
    assert executions.close(_detail(job, "FAILED", error="GitFailed", cause=cause))
    closed = jobs.get("job-1", consistent=True)
    assert closed["error"] == {"code": "GitFailed", "message": "git said: 503"}


def test_the_end_of_an_attempt_before_a_retry_leaves_the_retried_job_alone(aws: Any) -> None:
    job = _job(aws)
    jobs.put_new({**job, "jobId": "job-r", "attempt": 1, "executionArn": job["executionArn"] + "r"})
    retried = jobs.get("job-r", consistent=True)
    late = {**_detail(retried, "FAILED", error="GitFailed"), "redriveCount": 0}
    assert not executions.close(late), "the first attempt's end arrived after the retry"
    assert jobs.get("job-r", consistent=True)["status"] == "RUNNING"
    assert executions.close({**late, "redriveCount": 1})
    assert jobs.get("job-r", consistent=True)["status"] == "FAILED"


def test_a_stop_that_names_its_reason_fails_the_job_with_it_and_gives_back_what_it_held(aws: Any) -> None:
    """A Stop with an error (the local cloud's restart settles with ``LocalCloudStopped``) is the job's error."""
    from core import locks, quota

    job = launcher.new_job("job-s", "ursula", "git-pull", "prj-s", {}, MACHINE)
    jobs.put_new(job)
    quota.take("ursula", "job-s")
    assert locks.acquire("prj-s", "job-s", "git-pull") is None
    stop = {"error": "LocalCloudStopped", "cause": "The local cloud stopped while this execution ran."}
    assert executions.close(_detail(job, "ABORTED", **stop)) is True
    assert executions.close(_detail(job, "ABORTED", **stop)) is False, "one close, one job.finished"
    closed = jobs.get("job-s", consistent=True)
    assert closed["status"] == "FAILED", "a named stop is a failure a retry may redrive, not a cancel"
    assert closed["error"] == {"code": "LocalCloudStopped", "message": stop["cause"]}
    assert locks.acquire("prj-s", "job-next", "git-pull") is None, "the project's lock is free again"
    assert "job-s" not in quota.running("ursula")


def test_longruns_own_cancel_stays_a_cancel_whichever_close_comes_first(aws: Any) -> None:
    job = _job(aws)
    assert executions.close(_detail(job, "ABORTED", error="Cancelled", cause="cancelled by the user"))
    closed = jobs.get("job-1", consistent=True)
    assert closed["status"] == "CANCELLED"
    assert closed["error"] == {"code": "Cancelled", "message": "cancelled by the user"}
