"""What an operator reads: the job metrics the handlers print as EMF, and the keys on their log lines.

EMF (CloudWatch's embedded metric format) is one JSON line on stdout per data point; CloudWatch
Logs turns it into a metric of the namespace ``longrun``. These tests read those lines the way
CloudWatch does: the metric's name, unit, dimensions and value. Log lines are read from the
Powertools Logger's stream: every line of a job carries ``jobId``, ``executionArn`` and ``userId``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import jobs, launcher, observability, publisher
from core.observability import append_job_keys, logger
from core.steps import job_step
from steps.notify import notify
from triggers import executions, uploads

from .conftest import USER, FakeContext
from .test_api import call, create

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

BUILD_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:unit-build"


# --- reading what CloudWatch would read ----------------------------------------------------------------


def emf(text: str) -> list[dict[str, Any]]:
    """Every EMF data point printed: ``{"name", "unit", "value", "namespace", "dimensions"}``."""
    points = []
    for line in text.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            (dimension_names,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    points.append(
                        {
                            "name": metric["Name"],
                            "unit": metric["Unit"],
                            "value": value,
                            "namespace": directive["Namespace"],
                            "dimensions": {name: blob[name] for name in dimension_names},
                        }
                    )
    return points


def named(points: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [p for p in points if p["name"] == name]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The Logger's stream as a buffer; ``parsed(logs)`` gives its JSON lines so far."""
    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- JobsStarted ----------------------------------------------------------------------------------------


def test_post_jobs_counts_one_started_job_of_its_type(aws, capsys):
    answer = create("metered", headers={"Idempotency-Key": "once"})
    assert answer.status == 202
    again = create("metered", headers={"Idempotency-Key": "once"})
    assert again.body["jobId"] == answer.body["jobId"]

    started = named(emf(capsys.readouterr().out), "JobsStarted")
    assert started == [
        {
            "name": "JobsStarted",
            "unit": "Count",
            "value": 1.0,
            "namespace": "longrun",
            "dimensions": {"type": "create-project", "service": "longrun"},
        }
    ], "one data point: the repeat with the same Idempotency-Key started nothing"


def test_a_refused_job_counts_nothing(aws, capsys):
    assert call("POST", "/jobs", body={"type": "no-such-type", "params": {}}).status == 400
    assert create("not a valid name!").status == 400
    assert call("POST", "/jobs", body={"type": "sync", "projectId": "prj-not-mine", "params": {}}).status == 404
    assert named(emf(capsys.readouterr().out), "JobsStarted") == []


def test_a_sync_started_by_an_upload_is_counted_as_a_sync(aws, capsys):
    uploads._start_sync("0123456789abcdef0123456789abcdef", USER, "prj-uploaded")
    started = named(emf(capsys.readouterr().out), "JobsStarted")
    assert [p["dimensions"]["type"] for p in started] == ["sync"]


def test_a_job_whose_execution_cannot_start_is_counted_finished_failed_not_started(aws, capsys):
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:no-such-machine"
    job = launcher.new_job("job-nostart", USER, "build", "prj-1", {}, missing)
    jobs.put_new(job)
    with pytest.raises(Exception, match=r"does not exist|StateMachineDoesNotExist"):
        launcher.start_execution(job, missing)
    points = emf(capsys.readouterr().out)
    assert named(points, "JobsStarted") == []
    (finished,) = named(points, "JobsFinished")
    assert finished["dimensions"] == {"type": "build", "status": "FAILED", "service": "longrun"}


# --- JobsFinished and JobDuration --------------------------------------------------------------------------


def test_notify_counts_the_finished_job_by_type_and_status_and_its_duration(aws, capsys):
    two_seconds_ago = _iso(datetime.now(UTC) - timedelta(seconds=2))
    aws.put_job("job-done", createdAt=two_seconds_ago)

    notify.handler({"jobId": "job-done", "status": "SUCCEEDED", "result": {}}, FakeContext())
    notify.handler({"jobId": "job-done", "status": "SUCCEEDED", "result": {}}, FakeContext())  # a retried notify

    points = emf(capsys.readouterr().out)
    (finished,) = named(points, "JobsFinished")
    assert finished["unit"] == "Count" and finished["value"] == 1.0 and finished["namespace"] == "longrun"
    assert finished["dimensions"] == {"type": "create-project", "status": "SUCCEEDED", "service": "longrun"}
    (duration,) = named(points, "JobDuration")
    assert duration["unit"] == "Milliseconds"
    assert duration["dimensions"] == {"type": "create-project", "service": "longrun"}
    assert 2000 <= duration["value"] < 60_000


def test_a_cancel_counts_the_job_cancelled(aws, capsys):
    job_id = create("to-cancel").body["jobId"]
    assert call("DELETE", f"/jobs/{job_id}").status == 202
    (finished,) = named(emf(capsys.readouterr().out), "JobsFinished")
    assert finished["dimensions"]["status"] == "CANCELLED"


def test_one_batch_that_closes_jobs_of_several_statuses_counts_each_with_its_own(aws, capsys):
    """Why single_metric: one invocation, two jobs, two sets of dimensions."""
    timed_out = launcher.new_job("job-a", USER, "build", "prj-a", {}, BUILD_MACHINE)
    aborted = launcher.new_job("job-b", USER, "sync", "prj-b", {}, BUILD_MACHINE)
    for job in (timed_out, aborted):
        jobs.put_new(job)
    records = [
        _sqs_record("m1", {"detail": _detail(timed_out, "TIMED_OUT")}),
        _sqs_record("m2", {"detail": _detail(aborted, "ABORTED")}),
    ]
    assert executions.handler({"Records": records}, FakeContext()) == {"batchItemFailures": []}

    points = emf(capsys.readouterr().out)
    finished = sorted((p["dimensions"]["type"], p["dimensions"]["status"]) for p in named(points, "JobsFinished"))
    assert finished == [("build", "TIMED_OUT"), ("sync", "CANCELLED")]
    assert sorted(p["dimensions"]["status"] for p in named(points, "JobsClosedByExecutionStatus")) == [
        "CANCELLED",
        "TIMED_OUT",
    ]


def test_a_duration_from_a_malformed_timestamp_is_left_out():
    assert observability.duration_ms("2025-01-01T00:00:00.000Z", "2025-01-01T00:00:01.500Z") == 1500
    assert observability.duration_ms(None, "2025-01-01T00:00:01.500Z") is None
    assert observability.duration_ms("yesterday", "2025-01-01T00:00:01.500Z") is None


# --- log keys -------------------------------------------------------------------------------------------


def test_post_jobs_logs_the_job_the_execution_and_the_user(aws, logs):
    body = create("logged").body
    (started,) = [line for line in parsed(logs) if line["message"] == "job started"]
    assert started["jobId"] == body["jobId"]
    assert started["executionArn"] == body["executionArn"]
    assert started["userId"] == USER


def test_a_steps_lines_carry_the_keys_of_its_input(aws, logs):
    job = aws.put_job("job-step")

    @logger.inject_lambda_context(clear_state=True)
    @job_step("probe")
    def probe(event: dict[str, Any], context: Any) -> dict[str, Any]:
        logger.info("working")
        return {}

    probe({**job, "executionArn": job["executionArn"]}, FakeContext())
    (line,) = [line for line in parsed(logs) if line["message"] == "working"]
    assert (line["jobId"], line["executionArn"], line["userId"], line["step"]) == (
        "job-step",
        job["executionArn"],
        USER,
        "probe",
    )


def test_notify_reads_the_keys_from_the_job_it_closes(aws, logs):
    job = aws.put_job("job-notified")
    publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "by the user"})
    notify.handler({"jobId": "job-notified", "status": "SUCCEEDED", "result": {}}, FakeContext())
    (line,) = [line for line in parsed(logs) if line["message"] == "job was already closed"]
    assert (line["jobId"], line["executionArn"], line["userId"]) == ("job-notified", job["executionArn"], USER)


def test_a_batch_record_never_carries_the_job_of_the_record_before_it(aws, logs):
    job = launcher.new_job("job-first", USER, "build", "prj-a", {}, BUILD_MACHINE)
    jobs.put_new(job)
    stray = {"executionArn": BUILD_MACHINE.replace(":stateMachine:", ":execution:") + ":stray", "status": "FAILED",
             "input": json.dumps({"jobId": "no-such-job"})}  # fmt: skip
    records = [_sqs_record("m1", {"detail": _detail(job, "TIMED_OUT")}), _sqs_record("m2", {"detail": stray})]
    executions.handler({"Records": records}, FakeContext())

    lines = parsed(logs)
    (closed,) = [line for line in lines if line["message"] == "closed a job its workflow left open"]
    assert (closed["jobId"], closed["executionArn"], closed["userId"]) == ("job-first", job["executionArn"], USER)
    (ignored,) = [line for line in lines if line["message"] == "not a job's own execution; ignored"]
    assert ignored["executionArn"] == stray["executionArn"]
    assert "jobId" not in ignored and "userId" not in ignored


def test_keys_from_the_edges_are_bounded_and_only_text(logs):
    append_job_keys(jobId="j" * 10_000, userId={"not": "a string"})
    logger.info("bounded")
    (line,) = [line for line in parsed(logs) if line["message"] == "bounded"]
    assert len(line["jobId"]) == 256
    assert "userId" not in line
    logger.clear_state()


def test_the_tracer_is_off_where_there_is_no_xray_daemon():
    """POWERTOOLS_TRACE_DISABLED (unit tests; the local cloud sets it for every function)."""
    assert observability.tracer.disabled


# --- helpers ----------------------------------------------------------------------------------------------


def _detail(job: dict[str, Any], status: str) -> dict[str, Any]:
    return {"executionArn": job["executionArn"], "status": status, "input": json.dumps({"jobId": job["jobId"]})}


def _sqs_record(message_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": "r", "body": json.dumps(body), "attributes": {},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}  # fmt: skip


def _tracer_in_fresh_interpreter(disabled: str) -> list[str]:
    probe = (
        "import sys; import core.observability as o; "
        "print(type(o.tracer).__name__); print('aws_xray_sdk.core' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "handlers"),
           "POWERTOOLS_TRACE_DISABLED": disabled, "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_tracing_off_never_imports_the_xray_sdk_and_on_it_is_powertools_tracer():
    assert _tracer_in_fresh_interpreter("true") == ["_Untraced", "False"], "no X-Ray import cost where it is off"
    assert _tracer_in_fresh_interpreter("false") == ["Tracer", "True"]
