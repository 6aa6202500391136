"""A queued sync's backoff and its bound, and the error a failed Distributed Map's results give the user.

The wait loop (Acquire -> Acquired -> WaitForProject) writes 9 history events a turn; at a turn
every 2 s a sync queued 1.5 h behind a busy project ran into the execution's 25,000 events. A
Distributed Map that lost a batch fails as a whole with ``States.ExceedToleratedFailureThreshold``;
the batch's own error is in the results its ResultWriter put in S3.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from core import locks
from steps.sync import acquire, finish, work


def waits_until_refused(max_queue_seconds: int) -> list[int]:
    """Every wait a sync queued behind a job that never ends is told, until it gives up."""
    before: dict[str, Any] = {}
    waits: list[int] = []
    while True:
        try:
            before = acquire.queued(before, "holder", max_queue_seconds)
        except locks.ProjectBusy:
            return waits
        waits.append(before["waitSeconds"])
        assert len(waits) < 10_000, "the queue must end"


def test_a_queued_sync_waits_twice_as_long_each_time_up_to_a_minute():
    waits = waits_until_refused(3600)
    assert waits[:7] == [2, 4, 8, 16, 32, 60, 60]
    assert max(waits) == acquire.MAX_WAIT_SECONDS
    assert sum(waits) == 3600, "the last wait is cut to the bound"


def test_past_its_bound_a_queued_sync_fails_with_project_busy_naming_the_holder():
    with pytest.raises(locks.ProjectBusy, match=r"job blocker holds it\) for the 60 minutes"):
        acquire.queued({"waiting": True, "waitSeconds": 60, "waited": 3600}, "blocker", 3600)
    assert waits_until_refused(12) == [2, 4, 6]


def test_the_default_bound_is_an_hour_and_a_tuning_may_shorten_it():
    assert work.Tuning.of({}).max_queue_seconds == 3600
    assert work.Tuning.of({"tuning": {"maxQueueSeconds": 12}}).max_queue_seconds == 12


def test_uploads_still_gathering_do_not_count_as_queued():
    """A gathering answer (no ``waiting``) starts the backoff afresh once the project is found held."""
    assert acquire.next_wait({"acquired": False, "gathering": True, "waitSeconds": 2}, 3600) == (2, 2)


def _put(key: str, value: Any) -> None:
    boto3.client("s3").put_object(Bucket=work.bucket(), Key=key, Body=json.dumps(value).encode())


def test_a_failed_map_run_reports_its_first_failed_batch_error_from_s3(aws):
    job_id = "job-results"
    run = f"{work.results_prefix(job_id)}run-1/"
    cause = json.dumps(
        {"errorMessage": "a/b.txt is archived (GLACIER): restore it first", "errorType": "ObjectArchived"}
    )
    _put(f"{run}FAILED_0.json", [{"Status": "FAILED", "Error": "ObjectArchived", "Cause": cause, "Input": "{}"}])
    _put(f"{run}SUCCEEDED_0.json", [{"Status": "SUCCEEDED", "Output": "{}"}])
    _put(
        f"{run}manifest.json",
        {"ResultFiles": {"FAILED": [{"Key": f"{run}FAILED_0.json", "Size": 200}], "PENDING": [],
                         "SUCCEEDED": [{"Key": f"{run}SUCCEEDED_0.json", "Size": 40}]}},
    )  # fmt: skip
    caught = {"Error": finish.MAP_RUN_FAILED, "Cause": "The specified tolerated failure threshold was exceeded"}
    assert finish.reported_error({"jobId": job_id, "error": caught}) == {"Error": "ObjectArchived", "Cause": cause}


def test_any_other_error_or_missing_results_are_reported_as_caught(aws):
    caught = {"Error": finish.MAP_RUN_FAILED, "Cause": "exceeded"}
    assert finish.reported_error({"jobId": "job-without-results", "error": caught}) == caught
    other = {"Error": "ObjectArchived", "Cause": "{}"}
    assert finish.reported_error({"jobId": "job-results", "error": other}) == other
