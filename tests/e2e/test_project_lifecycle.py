"""The project lifecycle end to end: list a project, delete it as a job, and find it gone.

A real HTTP client and a real WebSocket against ``longrun local up``: the project is created,
files are uploaded (each upload starts a sync into the workspace), the project is listed, then
``DELETE /projects/{id}`` answers 202 with a ``delete-project`` job whose ``job.finished`` comes
over the WebSocket. Afterwards the record, every S3 version under the prefix and the workspace
directory on the local EFS are gone, the name can be used again, and the jobs stay readable.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.helpers import create_project, http, recv_until, unique_name, wait_for_status, ws_connect
from tests.e2e.test_openapi_conformance import check
from tests.e2e.test_sync import settle, upload, wait_for_file, workspace
from tests.workflows.engine import Workflow

USER = "syl"  # the uploads helper signs as this user
STRANGER = "mallory"


def delete(cloud: Any, project_id: str, user: str = USER) -> Any:
    response = http(cloud, "DELETE", f"/projects/{project_id}", user)
    check("DELETE", "/projects/{projectId}", response)
    return response


def listed(cloud: Any, user: str = USER) -> list[str]:
    ids, cursor = [], None
    while True:
        response = http(cloud, "GET", "/projects?limit=2" + (f"&cursor={cursor}" if cursor else ""), user)
        assert response.status_code == 200, response.text
        check("GET", "/projects", response)
        ids += [p["projectId"] for p in response.json()["items"]]
        cursor = response.json()["nextCursor"]
        if cursor is None:
            return ids


def test_a_project_is_listed_deleted_as_a_job_and_gone(local_cloud):
    name = unique_name("life")
    job = http(local_cloud, "POST", "/jobs", USER, json={"type": "create-project", "params": {"name": name}}).json()
    assert wait_for_status(local_cloud, job["jobId"], USER)["status"] == "SUCCEEDED"
    project_id = job["projectId"]
    upload(local_cloud, project_id, "docs/a.txt", b"alpha")
    upload(local_cloud, project_id, "b.bin", bytes(range(256)))
    syncs = settle(local_cloud, project_id)
    wait_for_file(workspace(local_cloud, project_id) / "docs" / "a.txt", b"alpha")
    assert project_id in listed(local_cloud)
    assert project_id not in listed(local_cloud, STRANGER)

    # another user's DELETE: 404, and nothing starts
    assert delete(local_cloud, project_id, STRANGER).status_code == 404

    with ws_connect(local_cloud, USER) as ws:
        response = delete(local_cloud, project_id)
        assert response.status_code == 202, response.text
        deletion = response.json()
        assert deletion["type"] == "delete-project" and deletion["projectId"] == project_id
        assert response.headers["Location"].endswith(f"/jobs/{deletion['jobId']}")
        ws.send(json.dumps({"action": "subscribe", "jobId": deletion["jobId"]}))
        messages = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=90)
    finished = messages[-1]
    assert finished["status"] == "SUCCEEDED", finished
    deleted = finished["result"]["deleted"]
    scaffold_files = scaffold_file_count(local_cloud, job["jobId"])
    assert deleted["objects"] == scaffold_files + 2, deleted  # the scaffold's files and the two uploads
    assert deleted["files"] >= scaffold_files + 2  # the workspace holds the repository's .git too
    steps = {m["step"]: m for m in messages if m.get("type") == "job.progress" and m["status"] == "SUCCEEDED"}
    assert {"mark-deleting", "delete-objects", "remove-workspace", "remove-records"} <= set(steps)
    assert steps["delete-objects"]["detail"]["objects"] == deleted["objects"]

    # gone: the record, S3 (every version), the workspace, the listing
    gone = http(local_cloud, "GET", f"/projects/{project_id}", USER)
    assert gone.status_code == 404
    check("GET", "/projects/{projectId}", gone)
    flow = Workflow(local_cloud)
    versions = flow.s3.list_object_versions(Bucket=flow.bucket, Prefix=f"projects/{project_id}/")
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")
    assert not workspace(local_cloud, project_id).exists()
    assert not any(p.name.endswith(project_id) for p in (local_cloud.efs_root() / "projects").iterdir())
    assert project_id not in listed(local_cloud)
    # calls on it: 404
    assert http(local_cloud, "POST", f"/projects/{project_id}/uploads", USER, json={"path": "c.txt"}).status_code == 404
    again = http(local_cloud, "POST", "/jobs", USER, json={"type": "sync", "projectId": project_id})
    assert again.status_code == 404
    assert delete(local_cloud, project_id).status_code == 404
    # the history stays readable
    for old in [job, *syncs]:
        assert http(local_cloud, "GET", f"/jobs/{old['jobId']}", USER).status_code == 200
    history = http(local_cloud, "GET", f"/jobs?projectId={project_id}&limit=100", USER).json()["items"]
    assert {job["jobId"], deletion["jobId"]} <= {j["jobId"] for j in history}
    # the name can be used again
    reuse = http(local_cloud, "POST", "/jobs", USER, json={"type": "create-project", "params": {"name": name}})
    assert reuse.status_code == 202, reuse.text
    assert wait_for_status(local_cloud, reuse.json()["jobId"], USER)["status"] == "SUCCEEDED"


def scaffold_file_count(cloud: Any, job_id: str) -> int:
    """The files create-project wrote to S3 (its write-scaffold step's progress counts them)."""
    events = http(cloud, "GET", f"/jobs/{job_id}/events", USER).json()["items"]
    written = next(e for e in events if e.get("step") == "write-scaffold" and e.get("status") == "SUCCEEDED")
    return int(written["detail"]["files"])


def test_delete_while_a_git_job_holds_the_project_is_busy(local_cloud):
    project_id = create_project(local_cloud, USER)
    flow = Workflow(local_cloud)
    flow.ddb.put_item(  # as a running git job holds it (the API took it for that job)
        TableName=flow.projects_table,
        Item={
            "pk": {"S": f"lock#{project_id}"},
            "jobId": {"S": "running-git-job"},
            "type": {"S": "git-merge"},
            "takenAt": {"S": "2025-01-01T00:00:00.000Z"},
            "expiresAt": {"N": str(int(time.time()) + 600)},
        },
    )
    response = delete(local_cloud, project_id)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "ProjectBusy"
    assert response.json()["error"]["details"][0]["jobId"] == "running-git-job"
    project = http(local_cloud, "GET", f"/projects/{project_id}", USER).json()
    assert project["status"] == "active"
    flow.ddb.delete_item(TableName=flow.projects_table, Key={"pk": {"S": f"lock#{project_id}"}})
    done = wait_for_status(local_cloud, delete(local_cloud, project_id).json()["jobId"], USER, timeout=90)
    assert done["status"] == "SUCCEEDED", done


def test_a_delete_that_fails_midway_leaves_the_project_deleting_and_a_retry_completes_it(local_cloud):
    project_id = create_project(local_cloud, USER)
    # The file system refuses the step: where the workspace is moved aside, a file is in the way.
    blocker = local_cloud.efs_root() / "projects" / f".deleting-{project_id}"
    blocker.write_text("in the way")
    job_id = delete(local_cloud, project_id).json()["jobId"]
    failed = wait_for_status(local_cloud, job_id, USER, timeout=90)
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "WorkspaceNotRemoved", failed
    project = http(local_cloud, "GET", f"/projects/{project_id}", USER).json()
    assert project["status"] == "deleting"  # never half usable
    busy = http(local_cloud, "POST", "/jobs", USER, json={"type": "sync", "projectId": project_id})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "ProjectBusy"
    blocker.unlink()
    retried = http(local_cloud, "POST", f"/jobs/{job_id}/retry", USER)
    assert retried.status_code == 202, retried.text
    done = wait_for_status(local_cloud, job_id, USER, timeout=90)
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["deleted"]["objects"] > 0  # counted by the first attempt's DeleteObjects
    assert http(local_cloud, "GET", f"/projects/{project_id}", USER).status_code == 404
    assert not workspace(local_cloud, project_id).exists() and not blocker.exists()
