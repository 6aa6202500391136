"""Uploads and syncs through the REST API, a real HTTP client on the pre-signed URL, and the WebSocket.

The upload goes straight to the local S3 endpoint; from there S3's event (EventBridge → SQS → the
trigger) starts the sync with nothing else called. The workspace is the project's directory on
the local "EFS".
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import create_project, http, recv_until, wait_for_status, ws_connect
from tests.e2e.test_openapi_conformance import check

USER = "syl"
HOSTILE = json.loads((Path(__file__).parents[1] / "security" / "hostile_paths.json").read_text())


@pytest.fixture
def project(local_cloud) -> str:
    return create_project(local_cloud, USER)


def workspace(cloud: Any, project_id: str) -> Path:
    return cloud.efs_root() / "projects" / project_id


def upload(cloud: Any, project_id: str, path: str, data: bytes, content_type: str | None = None) -> dict[str, Any]:
    """Ask for a pre-signed URL and PUT the bytes to it, as a browser would."""
    body: dict[str, Any] = {"path": path, "size": len(data)}
    if content_type:
        body["contentType"] = content_type
    response = http(cloud, "POST", f"/projects/{project_id}/uploads", USER, json=body)
    assert response.status_code == 200, response.text
    check("POST", "/projects/{projectId}/uploads", response)
    grant = response.json()
    put = httpx.request(grant["method"], grant["url"], content=data, headers=grant["headers"], timeout=30)
    assert put.status_code == 200, put.text
    return grant


def sync_jobs(cloud: Any, project_id: str) -> list[dict[str, Any]]:
    items = http(cloud, "GET", f"/jobs?projectId={project_id}&limit=100", USER).json()["items"]
    return [j for j in items if j["type"] == "sync"]


def settle(cloud: Any, project_id: str, at_least: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until the uploads' syncs exist (``at_least`` of them) and none runs; the sync jobs, newest first.

    An upload's sync starts a moment after the PUT (the event goes through EventBridge and SQS).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = sync_jobs(cloud, project_id)
        if len(jobs) >= at_least and all(j["status"] != "RUNNING" for j in jobs):
            return jobs
    raise TimeoutError(f"syncs of {project_id} still running")


def wait_for_file(path: Path, expected: bytes | None = None, timeout: float = 30) -> bytes:
    """The bytes of the regular file (not a symlink) at ``path`` once it is there (with ``expected``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if expected is None or data == expected:
                return data
        time.sleep(0.1)
    raise TimeoutError(f"{path} never appeared")


def sync(cloud: Any, project_id: str, **params: Any) -> dict[str, Any]:
    response = http(cloud, "POST", "/jobs", USER, json={"type": "sync", "projectId": project_id, "params": params})
    assert response.status_code == 202, response.text
    job = wait_for_status(cloud, response.json()["jobId"], USER, timeout=90)
    assert job["status"] == "SUCCEEDED", job["error"]
    return job


# --- uploads --------------------------------------------------------------------------------------


def test_an_upload_reaches_the_workspace_by_itself_and_the_sync_is_pushed(local_cloud, project):
    with ws_connect(local_cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "projectId": project}))
        recv_until(ws, lambda m: m.get("type") == "subscribed")
        grant = upload(local_cloud, project, "docs/héllo wörld.txt", b"hello\n", "text/plain")
        assert grant["key"] == f"projects/{project}/docs/héllo wörld.txt"
        assert grant["headers"] == {"Content-Type": "text/plain", "Content-Length": "6"}
        assert wait_for_file(workspace(local_cloud, project) / "docs" / "héllo wörld.txt") == b"hello\n"
        finished = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=60)[-1]
    assert finished["status"] == "SUCCEEDED" and finished["result"]["copied"] >= 1
    [job] = settle(local_cloud, project)
    assert job["jobId"] == finished["jobId"]


def test_a_burst_of_50_uploads_makes_one_sync_job(local_cloud, project):
    """As a browser uploads a folder: 50 upload URLs, then 50 PUTs at once."""
    grants = []
    for i in range(50):
        body = {"path": f"burst/file-{i:02d}.txt", "size": len(f"file {i}\n")}
        response = http(local_cloud, "POST", f"/projects/{project}/uploads", USER, json=body)
        assert response.status_code == 200, response.text
        grants.append((i, response.json()))

    def put(grant: tuple[int, dict[str, Any]]) -> int:
        i, ticket = grant
        return httpx.put(
            ticket["url"], content=f"file {i}\n".encode(), headers=ticket["headers"], timeout=30
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(put, grants)) == {200}
    jobs = settle(local_cloud, project)
    time.sleep(3)  # a second job, if the burst were split, would have started by now
    jobs = settle(local_cloud, project)
    assert len(jobs) == 1, [(j["jobId"], j["status"]) for j in jobs]
    job = wait_for_status(local_cloud, jobs[0]["jobId"], USER)
    assert job["status"] == "SUCCEEDED" and job["result"]["copied"] == 50
    written = sorted(p.name for p in (workspace(local_cloud, project) / "burst").iterdir())
    assert written == [f"file-{i:02d}.txt" for i in range(50)]


def test_hostile_upload_paths_are_400_and_strangers_projects_404(local_cloud, project):
    for kind in ("uploads", "downloads"):  # a download takes the same paths as an upload
        for entry in HOSTILE["paths"]:
            # json.dumps escapes what UTF-8 cannot carry (a lone surrogate arrives as "\ud800").
            raw = json.dumps({"path": entry["value"]})
            response = http(local_cloud, "POST", f"/projects/{project}/{kind}", USER, content=raw,
                            headers={"Content-Type": "application/json"})  # fmt: skip
            assert response.status_code == 400, (kind, entry, response.text)
            assert "path" in [d["path"] for d in response.json()["error"]["details"]], (kind, entry)
            check("POST", f"/projects/{{projectId}}/{kind}", response)
    bad = [{"path": "a.txt", "size": -1}, {"path": "a.txt", "size": 6 * 1024**3}, {"path": "a.txt", "contentType": "x"},
           {"path": "a.txt", "extra": 1}, {}]  # fmt: skip
    for body in bad:
        assert http(local_cloud, "POST", f"/projects/{project}/uploads", USER, json=body).status_code == 400, body
    stranger = http(local_cloud, "POST", f"/projects/{project}/uploads", "mallory", json={"path": "a.txt"})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "NotFound"
    check("POST", "/projects/{projectId}/uploads", stranger)
    time.sleep(2)
    assert sync_jobs(local_cloud, project) == [], "nothing was uploaded, so nothing synced"


def test_the_signed_length_binds_the_upload(local_cloud, project):
    grant = http(
        local_cloud, "POST", f"/projects/{project}/uploads", USER, json={"path": "exact.bin", "size": 4}
    ).json()
    longer = httpx.put(grant["url"], content=b"12345678", timeout=30)
    assert longer.status_code == 403, longer.text
    assert httpx.put(grant["url"], content=b"1234", timeout=30).status_code == 200
    assert wait_for_file(workspace(local_cloud, project) / "exact.bin") == b"1234"


# --- the sync job ---------------------------------------------------------------------------------


def test_a_second_sync_touches_nothing_and_a_changed_file_is_copied_back(local_cloud, project):
    upload(local_cloud, project, "src/app.js", b"console.log(1)\n")
    settle(local_cloud, project)
    first = sync(local_cloud, project)["result"]
    # The scaffold came down with its objects' times, src/app.js through a sync: nothing to copy.
    assert first["copied"] == 0 and first["unchanged"] >= 1, first
    app = workspace(local_cloud, project) / "src" / "app.js"
    inode = app.stat().st_ino
    again = sync(local_cloud, project)["result"]
    assert again["copied"] == 0 and app.stat().st_ino == inode, "an unchanged file is not rewritten"
    app.write_text("edited on the workspace\n")
    restored = sync(local_cloud, project)["result"]
    assert restored["copied"] == 1 and app.read_bytes() == b"console.log(1)\n"


def test_delete_only_when_asked_and_never_git(local_cloud, project):
    root = workspace(local_cloud, project)
    (root / "stray.txt").write_text("not in S3\n")
    kept = sync(local_cloud, project)["result"]
    assert (root / "stray.txt").exists() and kept["deleted"] == 0
    pruned = sync(local_cloud, project, delete=True)["result"]
    assert not (root / "stray.txt").exists() and pruned["deleted"] == 1
    assert (root / ".git" / "HEAD").is_file(), "the repository is never synced or deleted"


def test_efs_to_s3_uploads_the_workspace_and_does_not_echo_back(local_cloud, project):
    root = workspace(local_cloud, project)
    (root / "out").mkdir()
    (root / "out" / "report.txt").write_text("built\n")
    big = os.urandom(9 * 1024 * 1024)  # over the single-PUT size: a multipart upload
    (root / "out" / "big.bin").write_bytes(big)
    before = {j["jobId"] for j in sync_jobs(local_cloud, project)}
    result = sync(local_cloud, project, direction="efs-to-s3", prefix="out")["result"]
    assert result["copied"] == 2 and result["bytes"] == len(big) + 6
    s3 = local_cloud.aws_client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "projectsbucket" in b["Name"])
    assert s3.get_object(Bucket=bucket, Key=f"projects/{project}/out/report.txt")["Body"].read() == b"built\n"
    assert s3.get_object(Bucket=bucket, Key=f"projects/{project}/out/big.bin")["Body"].read() == big
    time.sleep(3)  # the upload events have been delivered by now
    new = [j for j in sync_jobs(local_cloud, project) if j["jobId"] not in before]
    assert len(new) == 1, "only the efs-to-s3 job: objects longrun wrote itself start no sync"
    back = sync(local_cloud, project)["result"]
    assert back["copied"] == 0, "what efs-to-s3 wrote is recorded as the same on both sides"


def test_a_symlink_in_the_workspace_is_never_followed(local_cloud, project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("other tenant\n")
    root = workspace(local_cloud, project)
    (root / "escape").symlink_to(outside)  # as a cloned repository could bring one
    (root / "link.txt").symlink_to(outside / "secret.txt")
    upload(local_cloud, project, "escape/pwned.txt", b"x")
    upload(local_cloud, project, "link.txt", b"replaced\n")
    jobs = settle(local_cloud, project)
    assert wait_for_file(root / "link.txt", b"replaced\n") == b"replaced\n"
    results = [wait_for_status(local_cloud, j["jobId"], USER)["result"] for j in jobs]
    assert not (outside / "pwned.txt").exists()
    assert (outside / "secret.txt").read_text() == "other tenant\n", "the link's target is untouched"
    assert not (root / "link.txt").is_symlink() and (root / "link.txt").read_text() == "replaced\n"
    problems = [p for r in results for p in r["problems"]]
    assert any(p["path"] == "escape/pwned.txt" for p in problems), results


def test_a_key_that_collides_on_the_file_system_is_reported(local_cloud, project):
    upload(local_cloud, project, "clash", b"a file\n")
    settle(local_cloud, project, at_least=1)
    upload(local_cloud, project, "clash/inside.txt", b"wants clash to be a directory\n")
    jobs = settle(local_cloud, project, at_least=2)
    last = wait_for_status(local_cloud, jobs[0]["jobId"], USER)
    assert last["status"] == "SUCCEEDED"
    assert [p["path"] for p in last["result"]["problems"]] == ["clash/inside.txt"]
    assert (workspace(local_cloud, project) / "clash").read_text() == "a file\n", "not silently overwritten"


def test_a_sync_waits_while_another_job_holds_the_project(local_cloud, project):
    """Queued, not refused and not lost: it runs once the project is free."""
    ddb = local_cloud.aws_client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if "-ProjectsTable-" in t)
    lock = {
        "pk": {"S": f"lock#{project}"},
        "jobId": {"S": "a-long-git-job"},
        "expiresAt": {"N": str(int(time.time()) + 120)},
    }
    ddb.put_item(TableName=table, Item=lock)
    queued = http(local_cloud, "POST", "/jobs", USER, json={"type": "sync", "projectId": project, "params": {}})
    assert queued.status_code == 202, "a sync is never refused for a busy project"
    job_id = queued.json()["jobId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = http(local_cloud, "GET", f"/jobs/{job_id}/events", USER).json()["items"]
        if any(e.get("step") == "queue" for e in events):
            break
        time.sleep(0.2)
    waiting = [e for e in events if e.get("step") == "queue"]
    assert waiting and waiting[0]["detail"] == {"waitingFor": "a-long-git-job"}
    time.sleep(3)
    assert http(local_cloud, "GET", f"/jobs/{job_id}", USER).json()["status"] == "RUNNING", "still waiting its turn"
    ddb.delete_item(TableName=table, Key={"pk": {"S": f"lock#{project}"}})
    job = wait_for_status(local_cloud, job_id, USER, timeout=60)
    assert job["status"] == "SUCCEEDED", job["error"]
    assert [s["name"] for s in job["steps"]][:2] == ["queue", "list"]


def test_a_queued_sync_can_be_cancelled_and_leaves_the_project_free(local_cloud, project):
    ddb = local_cloud.aws_client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if "-ProjectsTable-" in t)
    expires = str(int(time.time()) + 120)
    ddb.put_item(TableName=table, Item={"pk": {"S": f"lock#{project}"}, "jobId": {"S": "blocker"},
                                        "expiresAt": {"N": expires}})  # fmt: skip
    queued = http(local_cloud, "POST", "/jobs", USER, json={"type": "sync", "projectId": project, "params": {}}).json()
    time.sleep(2)
    cancelled = http(local_cloud, "DELETE", f"/jobs/{queued['jobId']}", USER)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "CANCELLED"
    lock = ddb.get_item(TableName=table, Key={"pk": {"S": f"lock#{project}"}}, ConsistentRead=True)["Item"]
    assert lock["jobId"]["S"] == "blocker", "cancelling a queued job frees nothing it did not hold"
    ddb.delete_item(TableName=table, Key={"pk": {"S": f"lock#{project}"}})
    assert sync(local_cloud, project)["status"] == "SUCCEEDED"
    assert wait_for_status(local_cloud, queued["jobId"], USER)["status"] == "CANCELLED"


@pytest.mark.parametrize(
    "params",
    [{"direction": "sideways"}, {"prefix": "../other"}, {"prefix": "/etc"}, {"prefix": "a\\b"}, {"delete": "yes"},
     {"prefix": ".git/"}, {"surprise": 1}],
)  # fmt: skip
def test_bad_sync_params_are_400(local_cloud, project, params):
    body = {"type": "sync", "projectId": project, "params": params}
    response = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"][0]["path"].startswith("params")


def test_hostile_keys_written_to_s3_directly_are_reported_not_followed(local_cloud, project, tmp_path):
    """Keys that never went through the uploads call (another tool wrote them) are checked by the sync too."""
    s3 = local_cloud.aws_client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "projectsbucket" in b["Name"])
    hostile = ["../escape.txt", "a/../../escape.txt", ".git/config", "dir/.GIT/hooks/post-checkout", "a\\b.txt",
               "\uff0e\uff0e/fullwidth.txt", "ctl\x07.txt", "x/./y.txt"]  # fmt: skip
    for key in hostile:
        s3.put_object(Bucket=bucket, Key=f"projects/{project}/{key}", Body=b"#!/bin/sh\ntouch /tmp/pwned\n")
    root = workspace(local_cloud, project)
    config_before = (root / ".git" / "config").read_bytes()
    result = sync(local_cloud, project)["result"]
    reported = {p["path"] for p in result["problems"]}
    assert set(hostile) <= reported, (set(hostile) - reported, result)
    assert (root / ".git" / "config").read_bytes() == config_before
    assert not (root.parent / "escape.txt").exists() and not (root.parent.parent / "escape.txt").exists()
    assert not (root / "dir").exists() and not (root / "x").exists()
