"""``statemachines/sync.asl.json`` on the local engine, with batches small enough for many rounds.

The executions are started directly with a ``tuning`` the API never passes (a few files per page
and per batch), so the listing's Choice loop turns many times and the copy runs as an inline Map
or, past the threshold, as a Distributed Map reading its batch index from S3. The objects are
written with longrun's writer mark, so their upload events start no sync of their own and the
executions here are the only ones touching the project.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

import pytest

from tests.workflows.engine import Workflow

USER = "wf-sync"
FILES = 40


@pytest.fixture(scope="module")
def workflow(local_cloud) -> Workflow:
    return Workflow(local_cloud)


@pytest.fixture
def project(workflow) -> str:
    started = workflow.start(USER, f"wf-{uuid.uuid4().hex[:10]}")
    assert workflow.wait(started["executionArn"]) == "SUCCEEDED"
    return started["projectId"]


def put(workflow: Workflow, project: str, path: str, body: bytes, **kwargs: Any) -> None:
    workflow.s3.put_object(Bucket=workflow.bucket, Key=f"projects/{project}/{path}", Body=body,
                           Metadata={"longrun-writer": "test"}, **kwargs)  # fmt: skip


def run_sync(workflow: Workflow, project: str, tuning: dict[str, int]) -> dict[str, Any]:
    started = workflow.start_job(
        "sync", USER, {"direction": "s3-to-efs", "delete": False}, project, extra={"tuning": tuning}
    )
    workflow.wait(started["executionArn"], timeout=180)
    return started


def states(workflow: Workflow, started: dict[str, Any]) -> list[str]:
    return workflow.states_entered(started["executionArn"])


def test_the_listing_loops_and_an_inline_map_copies_every_batch(workflow, project, local_cloud):
    for i in range(FILES):
        put(workflow, project, f"many/f{i:03d}.txt", f"file {i}\n".encode())
    started = run_sync(
        workflow, project, {"pageSize": 7, "batchFiles": 3, "distributedThreshold": 1000, "roundPages": 1}
    )
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("error")
    entered = states(workflow, started)
    assert entered.count("ListPage") >= FILES // 7, entered
    assert "CopyInline" in entered and "CopyDistributed" not in entered
    assert entered.count("CopyBatchInline") >= FILES // 3
    result = job["result"]
    assert result["copied"] + result["unchanged"] == FILES + 6, result  # the scaffold's 6 files are there too
    root = local_cloud.efs_root() / "projects" / project / "many"
    assert sorted(p.name for p in root.iterdir()) == [f"f{i:03d}.txt" for i in range(FILES)]
    assert (root / "f007.txt").read_text() == "file 7\n"
    progress = [e for e in workflow.events(started["jobId"]) if e["type"] == "job.progress"]
    listing = [e["status"] for e in progress if e["step"] == "list"]
    assert listing[0] == "STARTED" and listing[-1] == "SUCCEEDED" and listing.count("SUCCEEDED") == 1, listing
    assert ("copy", "SUCCEEDED") in [(e["step"], e["status"]) for e in progress]


def test_past_the_threshold_a_distributed_map_reads_the_batches_from_s3(workflow, project, local_cloud):
    for i in range(FILES):
        put(workflow, project, f"dist/{i % 4}/f{i:03d}.txt", f"{i}".encode() * 100)
    started = run_sync(workflow, project, {"pageSize": 10, "batchFiles": 2, "distributedThreshold": 3})
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("error")
    assert "CopyDistributed" in states(workflow, started)
    root = local_cloud.efs_root() / "projects" / project / "dist"
    assert sum(1 for p in root.rglob("*") if p.is_file()) == FILES
    # File lists travel as S3 references: no state in the whole history comes near 256 KiB.
    largest = max(len(json.dumps(e, default=str)) for e in workflow.history(started["executionArn"]))
    assert largest < 16 * 1024, largest
    # The children's results went to S3 (the ResultWriter), one per batch, none failed.
    results = map_run_results(workflow, started["jobId"])
    batches = workflow.s3.list_objects_v2(Bucket=workflow.bucket, Prefix=f"sync/{started['jobId']}/batches/")
    assert len(results["SUCCEEDED"]) == batches["KeyCount"] > 3 and results["FAILED"] == [], results
    assert sum(json.loads(c["Output"])["copied"] for c in results["SUCCEEDED"]) == job["result"]["copied"]
    again = run_sync(workflow, project, {"pageSize": 10, "batchFiles": 2, "distributedThreshold": 3})
    assert workflow.job(again["jobId"])["result"]["copied"] == 0, "a second run copies nothing"


def map_run_results(workflow: Workflow, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """The children of the job's Map Run, by status, as its ResultWriter's manifest lists them."""
    listed = workflow.s3.list_objects_v2(Bucket=workflow.bucket, Prefix=f"sync/{job_id}/results/").get("Contents", [])
    manifests = [o["Key"] for o in listed if o["Key"].endswith("/manifest.json")]
    assert len(manifests) == 1, [o["Key"] for o in listed]
    read = lambda key: json.loads(workflow.s3.get_object(Bucket=workflow.bucket, Key=key)["Body"].read())  # noqa: E731
    files = read(manifests[0])["ResultFiles"]
    return {status: [c for f in written for c in read(f["Key"])] for status, written in files.items()}


def test_a_batch_that_fails_fails_the_distributed_map_and_the_user_reads_its_own_error(workflow, project, local_cloud):
    """ToleratedFailureCount 0: the Map Run fails (States.ExceedToleratedFailureThreshold); the
    batch's error comes back from the results in S3, and what did copy is recorded."""
    for i in range(12):
        put(workflow, project, f"dfail/f{i:02d}.txt", f"part {i}\n".encode())
    put(workflow, project, "dfail/zz-archived.txt", b"cold\n", StorageClass="GLACIER")
    started = run_sync(workflow, project, {"pageSize": 5, "batchFiles": 1, "distributedThreshold": 3})
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED", job.get("result")
    entered = states(workflow, started)
    assert "CopyDistributed" in entered and entered[-3:] == ["SaveProgress", "NotifyFailure", "JobFailed"], entered
    failed = [e for e in workflow.history(started["executionArn"]) if e["type"] == "MapRunFailed"]
    assert failed and failed[0]["mapRunFailedEventDetails"]["error"] == "States.ExceedToleratedFailureThreshold"
    assert job["error"]["code"] == "ObjectArchived" and "zz-archived.txt" in job["error"]["message"], job["error"]
    results = map_run_results(workflow, started["jobId"])
    assert [c["Error"] for c in results["FAILED"]] == ["ObjectArchived"]
    assert len(results["SUCCEEDED"]) == 12
    root = local_cloud.efs_root() / "projects" / project / "dfail"
    assert len(list(root.iterdir())) == 12, "the batches that did copy are there (and recorded)"
    workflow.s3.restore_object(
        Bucket=workflow.bucket, Key=f"projects/{project}/dfail/zz-archived.txt", RestoreRequest={"Days": 1}
    )
    second = run_sync(workflow, project, {"pageSize": 5, "batchFiles": 1, "distributedThreshold": 3})
    assert workflow.job(second["jobId"])["result"]["copied"] == 1, "the next sync copies only the rest"


def test_a_queued_sync_asks_again_later_each_time_and_gives_up_with_project_busy(workflow, project):
    """The wait loop writes 9 history events a turn: its waits grow, and it ends (tests/infra/test_sync_machine.py
    counts the worst case against the history's 25,000 events)."""
    lock = {"pk": {"S": f"lock#{project}"}, "jobId": {"S": "a-long-job"},
            "expiresAt": {"N": str(int(time.time()) + 600)}}  # fmt: skip
    workflow.ddb.put_item(TableName=workflow.projects_table, Item=lock)
    try:
        started = run_sync(workflow, project, {"maxQueueSeconds": 12})
    finally:
        workflow.ddb.delete_item(TableName=workflow.projects_table, Key={"pk": {"S": f"lock#{project}"}})
    job = workflow.job(started["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "ProjectBusy" and "a-long-job" in job["error"]["message"], job["error"]
    events = workflow.history(started["executionArn"])
    waits = [
        json.loads(e["stateEnteredEventDetails"]["input"])["listing"]["waitSeconds"]
        for e in events
        if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == "WaitForProject"
    ]
    assert waits == [2, 4, 6], waits
    turns = [i for i, e in enumerate(events) if e.get("stateEnteredEventDetails", {}).get("name") == "Acquire"]
    assert {b - a for a, b in itertools.pairwise(turns)} == {9}, "the events a turn the count is based on"


def test_a_sync_that_fails_midway_keeps_what_it_copied_and_the_next_one_finishes(workflow, project, local_cloud):
    for i in range(12):
        put(workflow, project, f"part/f{i:02d}.txt", f"part {i}\n".encode())
    put(workflow, project, "part/zz-archived.txt", b"cold\n", StorageClass="GLACIER")
    first = run_sync(workflow, project, {"pageSize": 5, "batchFiles": 1, "distributedThreshold": 1000})
    job = workflow.job(first["jobId"])
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "ObjectArchived" and "zz-archived.txt" in job["error"]["message"]
    assert states(workflow, first)[-3:] == ["SaveProgress", "NotifyFailure", "JobFailed"]
    root = local_cloud.efs_root() / "projects" / project / "part"
    done_first = {p.name for p in root.iterdir()} if root.exists() else set()
    assert "zz-archived.txt" not in done_first
    assert not [p for p in root.parent.rglob(".longrun-*")], "no partial file is left"
    # Restored from the archive (as a user does), the next sync finishes the job.
    key = f"projects/{project}/part/zz-archived.txt"
    workflow.s3.restore_object(Bucket=workflow.bucket, Key=key, RestoreRequest={"Days": 1})
    second = run_sync(workflow, project, {"pageSize": 5, "batchFiles": 1, "distributedThreshold": 1000})
    result = workflow.job(second["jobId"])["result"]
    assert workflow.job(second["jobId"])["status"] == "SUCCEEDED"
    assert sorted(p.name for p in root.iterdir()) == [f"f{i:02d}.txt" for i in range(12)] + ["zz-archived.txt"]
    copied_again = 13 - len(done_first)
    assert result["copied"] == copied_again, (result, sorted(done_first))


def test_a_small_sync_copies_in_its_listing_step_without_a_map(workflow, project, local_cloud):
    for i in range(3):
        put(workflow, project, f"few/f{i}.txt", b"few\n")
    started = run_sync(workflow, project, {})
    job = workflow.job(started["jobId"])
    assert job["status"] == "SUCCEEDED", job.get("error")
    entered = states(workflow, started)
    assert entered[-3:] == ["ListPage", "MoreToList", "NotifyCopiedInListing"], entered
    assert "CopyInline" not in entered and "CopyDistributed" not in entered
    assert (local_cloud.efs_root() / "projects" / project / "few" / "f2.txt").read_text() == "few\n"
    assert job["result"]["copied"] >= 3
    assert {name: step["status"] for name, step in job["steps"].items()} == {"list": "SUCCEEDED", "copy": "SUCCEEDED"}
