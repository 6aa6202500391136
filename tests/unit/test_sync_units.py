"""The pieces of a sync on their own, against moto in process: what counts as unchanged, the upload
requests a burst joins, the upload trigger, and the uploads endpoint's checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import sync_requests
from steps.sync.listing import Item, unchanged
from steps.sync.manifest import Record
from triggers import uploads

from .conftest import USER

SECOND = 1_000_000_000


# --- what counts as unchanged ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "source", "dest", "record", "same"),
    [
        # with a record: ETag, size and the workspace file's mtime must all match it
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), Item("a", 5, 99), Record(5, "e1", 99), True),
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e2"), Item("a", 5, 99), Record(5, "e1", 99), False),
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), Item("a", 5, 98), Record(5, "e1", 99), False),
        ("efs-to-s3", Item("a", 5, 99), Item("a", 5, 10 * SECOND, "e1"), Record(5, "e1", 99), True),
        ("efs-to-s3", Item("a", 5, 100), Item("a", 5, 10 * SECOND, "e1"), Record(5, "e1", 99), False),
        # without one: size, and the mtime rule of `aws s3 sync`
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), Item("a", 5, 10 * SECOND + 5), None, True),
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), Item("a", 5, 11 * SECOND), None, False),
        ("efs-to-s3", Item("a", 5, 10 * SECOND), Item("a", 5, 12 * SECOND, "e1"), None, True),
        ("efs-to-s3", Item("a", 5, 13 * SECOND), Item("a", 5, 12 * SECOND, "e1"), None, False),
        # a different size or no destination is always a copy
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), Item("a", 6, 99), Record(5, "e1", 99), False),
        ("s3-to-efs", Item("a", 5, 10 * SECOND, "e1"), None, Record(5, "e1", 99), False),
    ],
)
def test_unchanged(direction, source, dest, record, same):
    assert unchanged(direction, source, dest, record) is same


# --- upload requests ------------------------------------------------------------------------------


def test_the_first_upload_opens_a_request_and_the_rest_join_it(aws):
    first = sync_requests.join("prj-1", USER, "a.txt", "job-1")
    second = sync_requests.join("prj-1", USER, "b.txt", "job-2")
    assert first == sync_requests.Joined("job-1", True)
    assert second == sync_requests.Joined("job-1", False), "the waiting job takes it"
    assert 0 < sync_requests.quiet_in("prj-1", "job-1") <= sync_requests.QUIET_MS / 1000
    assert sync_requests.take("prj-1", "job-2") is None, "only its own job takes a request"
    assert sync_requests.take("prj-1", "job-1") == (["a.txt", "b.txt"], False)
    assert sync_requests.join("prj-1", USER, "c.txt", "job-3").started_here, "after the take: the next job"


def test_a_request_past_max_keys_becomes_a_full_listing(aws, monkeypatch):
    monkeypatch.setattr(sync_requests, "MAX_KEYS", 3)
    for i in range(5):
        sync_requests.join("prj-2", USER, f"f{i}", "job-1")
    assert sync_requests.take("prj-2", "job-1") == ([], True)


def test_a_request_whose_job_died_is_taken_over(aws, monkeypatch):
    sync_requests.join("prj-3", USER, "a", "job-dead")  # its trigger died before writing the job
    now = sync_requests.epoch_seconds()
    monkeypatch.setattr(sync_requests, "epoch_seconds", lambda: now + sync_requests.STALE_SECONDS + 1)
    assert sync_requests.join("prj-3", USER, "b", "job-new") == sync_requests.Joined("job-new", True)


# --- the upload trigger ---------------------------------------------------------------------------


def _record(key: str, message_id: str) -> dict[str, Any]:
    body = {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"},
            "object": {"key": key, "size": 1}}}  # fmt: skip
    return {"messageId": message_id, "receiptHandle": "r", "body": json.dumps(body), "attributes": {},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}  # fmt: skip


def _project(aws, project_id: str, owner: str = USER) -> None:
    aws.table("PROJECTS_TABLE").put_item(Item={"pk": f"project#{project_id}", "projectId": project_id,
                                               "userId": owner})  # fmt: skip


def _put(aws, key: str, **kwargs: Any) -> None:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=key, Body=b"x", **kwargs)


def test_a_burst_of_upload_events_starts_one_job_for_the_projects_owner(aws, context):
    _project(aws, "prj-up", owner="carol")
    for i in range(20):
        _put(aws, f"projects/prj-up/f{i}.txt")
    response = uploads.handler({"Records": [_record(f"projects/prj-up/f{i}.txt", f"m{i}") for i in range(20)]}, context)
    assert response == {"batchItemFailures": []}
    jobs = aws.table("JOBS_TABLE").scan()["Items"]
    assert len(jobs) == 1
    assert jobs[0]["userId"] == "carol" and jobs[0]["type"] == "sync" and jobs[0]["projectId"] == "prj-up"
    executions = aws.client("stepfunctions").list_executions(stateMachineArn=jobs[0]["executionArn"].rsplit(":", 1)[0]
                                                             .replace(":execution:", ":stateMachine:"))  # fmt: skip
    assert len(executions["executions"]) == 1


def test_events_the_trigger_ignores(aws, context):
    _project(aws, "prj-quiet")
    _put(aws, "projects/prj-quiet/mine.txt", Metadata={"longrun-writer": "job-x"})
    _put(aws, "projects/prj-none/x.txt")  # no such project
    records = [
        _record("projects/prj-quiet/mine.txt", "m1"),  # written by longrun itself
        _record("projects/prj-quiet/gone.txt", "m2"),  # deleted since
        _record("projects/prj-none/x.txt", "m3"),
        _record("projects/prj-quiet/../x", "m4"),  # not a safe path
        _record("elsewhere/x", "m5"),
    ]
    assert uploads.handler({"Records": records}, context) == {"batchItemFailures": []}
    assert aws.table("JOBS_TABLE").scan()["Items"] == []


def test_a_record_that_fails_is_reported_alone(aws, context, monkeypatch):
    _project(aws, "prj-a")
    _project(aws, "prj-b")
    _put(aws, "projects/prj-a/x")
    _put(aws, "projects/prj-b/x")
    real = uploads._start_sync

    def flaky(job_id: str, user_id: str, project_id: str) -> None:
        if project_id == "prj-b":
            raise RuntimeError("Step Functions is down")
        real(job_id, user_id, project_id)

    monkeypatch.setattr(uploads, "_start_sync", flaky)
    response = uploads.handler({"Records": [_record("projects/prj-a/x", "ok"), _record("projects/prj-b/x", "bad")]},
                               context)  # fmt: skip
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


# --- copy progress --------------------------------------------------------------------------------


def test_progress_of_one_long_download_adds_up_across_flushes(aws):
    """Bytes flow in while no file has finished (files += 0): every flush still reads both totals."""
    from core import publisher
    from steps.sync.copy_batch import Progress

    job = aws.put_job("job-long", type="sync", projectId="prj-long")
    event = {**job, "toCopy": 1, "bytesToCopy": 30}
    publisher.progress(event, "copy", "STARTED")
    progress = Progress(event)
    progress.add(nbytes=10)
    progress.flush()
    progress.add(nbytes=10)
    aws.table("JOBS_TABLE").update_item(Key={"jobId": "job-long"}, UpdateExpression="REMOVE progressAt")
    progress.flush()
    details = [e["detail"] for e in aws.events("job-long") if e.get("step") == "copy" and e["detail"]]
    assert details[-1] == {"files": 0, "bytes": 20, "ofFiles": 1, "ofBytes": 30}
    progress.add(files=1, nbytes=10)
    aws.table("JOBS_TABLE").update_item(Key={"jobId": "job-long"}, UpdateExpression="REMOVE progressAt")
    progress.flush()
    details = [e["detail"] for e in aws.events("job-long") if e.get("step") == "copy" and e["detail"]]
    assert details[-1] == {"files": 1, "bytes": 30, "ofFiles": 1, "ofBytes": 30}
