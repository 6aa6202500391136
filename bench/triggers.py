"""Triggers: what the EventBridge paths add to a job, each beside the REST path that does the same.

* **Start Job event → job done**: a ``create-project`` started by ``PutEvents`` on the stack's bus
  (rule → SQS → the Start Job trigger → the same start as ``POST /jobs``), timed from the call to
  the ``at`` of the job's ``job.finished`` (written by the notify step). Baseline: the same job
  started by ``POST /jobs``, same user, alternating in each round. The difference is the event's
  way in: EventBridge's delivery to the queue and the event source mapping's poll.
* **Execution stopped → job closed**: a build stopped with ``StopExecution`` behind the API's back
  is closed by the execution-status trigger (Step Functions' status event → rule → SQS → trigger),
  timed from the call to the ``at`` of its ``job.finished``. Baseline: ``DELETE /jobs/{id}`` on
  another such build, which closes the job itself. The difference is how long a job stopped from
  the console says ``RUNNING``.

Client and local cloud share one clock; ``at`` has millisecond precision.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.calls import post_create_project, unique_name
from bench.cloud import Cloud, parse_time
from bench.report import Row, Section
from bench.stats import median

USER = "bench-triggers"
TRUSTED = "longrun.local"


@dataclass
class Settings:
    rounds: int = 5

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1)


def _finished(rest: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = rest.get(f"/jobs/{job_id}/events").json()["items"]
        done = [e for e in events if e["type"] == "job.finished"]
        if done:
            return done[-1]
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish")


def _new_job(rest: httpx.Client, known: set[str], timeout: float = 60) -> dict[str, Any]:
    """The user's job that was not there before (a Start Job event names no job id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in rest.get("/jobs", params={"limit": 5}).json()["items"]:
            if job["jobId"] not in known:
                return job
        time.sleep(0.02)
    raise TimeoutError("the Start Job event started no job")


def _by_event(cloud: Cloud, rest: httpx.Client, bus: str) -> float:
    known = {j["jobId"] for j in rest.get("/jobs", params={"limit": 100}).json()["items"]}
    detail = {"userId": USER, "type": "create-project", "params": {"name": unique_name("ev")}}
    entry = {"Source": TRUSTED, "DetailType": "Start Job", "Detail": json.dumps(detail), "EventBusName": bus}
    events = cloud.aws_client("events")
    started = time.time()
    answer = events.put_events(Entries=[entry])
    if answer["FailedEntryCount"]:
        raise RuntimeError(f"PutEvents refused the event: {answer}")
    job = _new_job(rest, known)
    finished = _finished(rest, job["jobId"])
    if finished["status"] != "SUCCEEDED":
        raise RuntimeError(f"event-started job ended {finished['status']}")
    return (parse_time(finished["at"]) - started) * 1000


def _by_post(rest: httpx.Client) -> float:
    started = time.time()
    job = post_create_project(rest)
    finished = _finished(rest, job["jobId"])
    if finished["status"] != "SUCCEEDED":
        raise RuntimeError(f"job ended {finished['status']}")
    return (parse_time(finished["at"]) - started) * 1000


def _running_build(rest: httpx.Client, project: str) -> dict[str, Any]:
    answer = rest.post("/jobs", json={"type": "build", "projectId": project, "params": {"command": "sleep 60"}})
    if answer.status_code != 202:
        raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text[:200]}")
    job = answer.json()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until a worker runs it: the execution waits on its task token
        steps = rest.get(f"/jobs/{job['jobId']}").json().get("steps") or []
        if any(s["name"] == "build" for s in steps):
            return job
        time.sleep(0.05)
    raise TimeoutError("no worker took the build")


def _closed_by(stop: Callable[[dict[str, Any]], None], rest: httpx.Client, project: str) -> float:
    job = _running_build(rest, project)
    started = time.time()
    stop(job)
    finished = _finished(rest, job["jobId"])
    if finished["status"] != "CANCELLED":
        raise RuntimeError(f"stopped build ended {finished['status']}")
    return (parse_time(finished["at"]) - started) * 1000


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("triggers")
    outputs = cloud.aws_client("cloudformation").describe_stacks(StackName="longrun")["Stacks"][0]["Outputs"]
    bus = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "EventBusName")
    sfn = cloud.aws_client("stepfunctions")
    event_ms: list[float] = []
    post_ms: list[float] = []
    trigger_ms: list[float] = []
    cancel_ms: list[float] = []
    errors: list[str] = []
    with cloud.rest(USER) as rest:
        project = _by_post_project(rest)
        for r in range(s.rounds):
            say(f"triggers: round {r + 1}/{s.rounds}")
            try:
                post_ms.append(_by_post(rest))
                event_ms.append(_by_event(cloud, rest, bus))

                def stop_behind(job: dict[str, Any]) -> None:
                    sfn.stop_execution(executionArn=job["executionArn"], error="Bench", cause="stopped by the bench")

                def cancel(job: dict[str, Any]) -> None:
                    answer = rest.delete(f"/jobs/{job['jobId']}")
                    if answer.status_code != 202:
                        raise RuntimeError(f"DELETE answered {answer.status_code}")

                cancel_ms.append(_closed_by(cancel, rest, project))
                trigger_ms.append(_closed_by(stop_behind, rest, project))
            except Exception as e:  # counted and reported with the figures
                errors.append(f"{type(e).__name__}: {str(e)[:200]}")
    section.rows = [
        Row("create-project started by a Start Job event: PutEvents → job.finished written", "ms", event_ms,
            post_ms, "POST /jobs → job.finished written", digits=0),
        Row("build stopped behind the API's back: StopExecution → job closed by the trigger", "ms", trigger_ms,
            cancel_ms, "DELETE /jobs/{id} → job closed", digits=0),
    ]  # fmt: skip
    if event_ms and post_ms:
        section.notes.append(
            f"the event's way in (rule → queue → trigger) adds {median(event_ms) - median(post_ms):.0f} ms "
            "at the median"
        )
    section.notes.append(f"rounds: {s.rounds}; errors: {len(errors)}" + (f" — first: {errors[0]}" if errors else ""))
    return section


def _by_post_project(rest: httpx.Client) -> str:
    """A project for the builds, made the way a user makes one."""
    job = post_create_project(rest)
    finished = _finished(rest, job["jobId"])
    if finished["status"] != "SUCCEEDED":
        raise RuntimeError(f"create-project ended {finished['status']}")
    return str(finished["projectId"])
