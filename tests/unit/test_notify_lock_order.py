"""The notify step gives the project's lock back before it pushes ``job.finished``.

A client that is told a git job ended (the CLI's ``--watch``, the web console, ``longrun smoke``)
starts the next git job on the project at once; were the lock still held when the push went out,
that start would be ``409 ProjectBusy`` by a race.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import jobs, launcher, locks, publisher
from steps.notify import notify
from triggers import executions

from .conftest import FakeContext

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

JOB_ID = "feedfacefeedfacefeedfacefeedface"
PROJECT_ID = "prj-feedfacefeedface"


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED"])
def test_the_lock_is_free_when_job_finished_is_pushed(aws: Any, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    aws.put_job(JOB_ID, type="git-pull", projectId=PROJECT_ID, params={"strategy": "ff-only"})
    assert locks.acquire(PROJECT_ID, JOB_ID, "git-pull") is None
    holders_at_push: list[str | None] = []
    real_push = publisher._push

    def push(job: dict[str, Any], event: dict[str, Any]) -> None:
        if event["type"] == "job.finished":
            holders_at_push.append(locks.acquire(PROJECT_ID, "next0000next0000next0000next0000", "git-push"))
        real_push(job, event)

    monkeypatch.setattr(publisher, "_push", push)
    error = {"Error": "NotFastForward", "Cause": '{"errorMessage": "diverged"}'}
    notify.handler({"jobId": JOB_ID, "status": status, "result": {"commit": "0" * 40, "updated": False},
                    **({"error": error} if status == "FAILED" else {})}, FakeContext())  # fmt: skip
    assert holders_at_push == [None]  # the next job took the lock: nobody held it any more


def test_the_execution_status_trigger_frees_the_lock_before_its_push(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git step's uncaught error (git failing against the server) closes the job here instead."""
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:longrun-git-clone"
    job = launcher.new_job(JOB_ID, "ursula", "git-clone", PROJECT_ID, {}, machine)
    jobs.put_new(job)
    assert locks.acquire(PROJECT_ID, JOB_ID, "git-clone") is None
    holders_at_push: list[str | None] = []
    real_push = publisher._push

    def push(job: dict[str, Any], event: dict[str, Any]) -> None:
        if event["type"] == "job.finished":
            holders_at_push.append(locks.acquire(PROJECT_ID, "next0000next0000next0000next0000", "delete-project"))
        real_push(job, event)

    monkeypatch.setattr(publisher, "_push", push)
    cause = json.dumps({"errorMessage": "repository not found", "errorType": "GitFailed"})
    detail = {"executionArn": job["executionArn"], "status": "FAILED", "input": json.dumps({"jobId": JOB_ID}),
              "error": "GitFailed", "cause": cause}  # fmt: skip
    assert executions.close(detail) is True
    assert holders_at_push == [None]
