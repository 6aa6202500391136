"""The whole create-project path through real HTTP and a real WebSocket, against ``longrun local up``."""

from __future__ import annotations

import json
import subprocess
import time

from tests.e2e.helpers import (
    http,
    recv_json,
    recv_until,
    settled_execution_status,
    start_create_project,
    unique_name,
    wait_for_status,
    ws_connect,
)


def test_create_project_end_to_end(local_cloud):
    name = unique_name("shop")
    with ws_connect(local_cloud, "alice") as ws:
        started = time.monotonic()
        response = http(local_cloud, "POST", "/jobs", json={"type": "create-project", "params": {"name": name}})
        accepted_in = time.monotonic() - started
        assert response.status_code == 202, response.text
        job = response.json()
        assert accepted_in < 1.0, "POST /jobs must answer well inside a second"
        assert response.headers["Location"] == f"/jobs/{job['jobId']}"
        assert job["status"] == "RUNNING" and job["type"] == "create-project"
        assert job["projectId"].startswith("prj-")
        assert job["links"]["self"] == f"/jobs/{job['jobId']}"
        assert job["links"]["events"] == f"/jobs/{job['jobId']}/events"
        # Where an operator reads the execution: the Step Functions console, in the ARN's region.
        assert job["links"]["console"] == (
            "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
            f"#/v2/executions/details/{job['executionArn']}"
        )
        execution_name = job["executionArn"].rsplit(":", 1)[-1]
        assert execution_name == f"create-project-{name}-{job['jobId'][:8]}"

        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        messages = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=60)

    assert messages[0] == {"type": "subscribed", "jobId": job["jobId"]}
    finished = messages[-1]
    assert finished["status"] == "SUCCEEDED"
    result = finished["result"]
    assert result == {
        "projectId": job["projectId"],
        "s3Prefix": f"projects/{job['projectId']}/",
        "workspace": f"/projects/{job['projectId']}",
        "defaultBranch": "main",
    }

    # The WebSocket may have joined after the first events: the REST history has them all, 1..n.
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events").json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1] == finished
    pushed = [m for m in messages if "seq" in m]
    assert pushed == events[len(events) - len(pushed) :], "pushed events are the stored ones, in order"
    steps = [(e["step"], e["status"]) for e in events if e["type"] == "job.progress"]
    assert steps == [
        ("reserve-name", "STARTED"), ("reserve-name", "SUCCEEDED"),
        ("write-scaffold", "STARTED"), ("write-scaffold", "SUCCEEDED"),
        ("init-repository", "STARTED"), ("init-repository", "SUCCEEDED"),
        ("record-project", "STARTED"), ("record-project", "SUCCEEDED"),
    ]  # fmt: skip

    # The job record was written before the push, with every step.
    record = http(local_cloud, "GET", f"/jobs/{job['jobId']}").json()
    assert record["status"] == "SUCCEEDED" and record["result"] == result and record["error"] is None
    assert [s["name"] for s in record["steps"]] == [
        "reserve-name",
        "write-scaffold",
        "init-repository",
        "record-project",
    ]
    assert all(s["status"] == "SUCCEEDED" and s["startedAt"] <= s["endedAt"] for s in record["steps"])

    project = http(local_cloud, "GET", f"/projects/{job['projectId']}").json()
    assert project["name"] == name and project["defaultBranch"] == "main" and project["jobId"] == job["jobId"]

    # What the steps made is really there: the scaffold in S3, the repository on EFS.
    s3 = local_cloud.aws_client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "projectsbucket" in b["Name"])
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=result["s3Prefix"])["Contents"]}
    assert f"{result['s3Prefix']}README.md" in keys and f"{result['s3Prefix']}longrun.json" in keys
    readme = s3.get_object(Bucket=bucket, Key=f"{result['s3Prefix']}README.md")["Body"].read().decode()
    assert readme.startswith(f"# {name}")
    repo = local_cloud.efs_root() / "projects" / job["projectId"]
    branches = subprocess.run(
        ["git", "-C", str(repo), "branch", "--format=%(refname:short)"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(branches) == ["develop", "main"]
    assert (repo / "README.md").read_text().startswith(f"# {name}")

    # The execution is there for operators, and it succeeded.
    sfn = local_cloud.aws_client("stepfunctions")
    assert settled_execution_status(sfn, job["executionArn"]) == "SUCCEEDED"


def test_late_subscriber_gets_job_finished_at_once(local_cloud):
    job = start_create_project(local_cloud)
    finished_job = wait_for_status(local_cloud, job["jobId"])
    assert finished_job["status"] == "SUCCEEDED"
    with ws_connect(local_cloud, "alice") as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        assert recv_json(ws) == {"type": "subscribed", "jobId": job["jobId"]}
        late = recv_json(ws)
    assert late["type"] == "job.finished" and late["jobId"] == job["jobId"] and late["status"] == "SUCCEEDED"
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events").json()["items"]
    assert late == events[-1]


def test_project_subscription_sees_every_event_of_the_project(local_cloud):
    job = start_create_project(local_cloud)
    with ws_connect(local_cloud, "alice") as ws:
        ws.send(json.dumps({"action": "subscribe", "projectId": job["projectId"]}))
        messages = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=60)
    assert messages[0] == {"type": "subscribed", "projectId": job["projectId"]}
    seqs = [m["seq"] for m in messages[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_taken_name_is_409_and_other_users_may_use_it(local_cloud):
    name = unique_name("taken")
    first = http(local_cloud, "POST", "/jobs", json={"type": "create-project", "params": {"name": name}})
    assert wait_for_status(local_cloud, first.json()["jobId"])["status"] == "SUCCEEDED"
    again = http(local_cloud, "POST", "/jobs", json={"type": "create-project", "params": {"name": name}})
    assert again.status_code == 409 and again.json()["error"]["code"] == "Conflict"
    other = http(local_cloud, "POST", "/jobs", user="bob", json={"type": "create-project", "params": {"name": name}})
    assert other.status_code == 202


def test_cancel_running_job_ends_cancelled_with_one_finished_event(local_cloud):
    job = start_create_project(local_cloud)
    cancelled = http(local_cloud, "DELETE", f"/jobs/{job['jobId']}")
    if cancelled.status_code == 409:  # it finished first: a fast machine; the 409 path is then checked
        assert cancelled.json()["error"]["code"] == "Conflict"
        return
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "CANCELLED"
    time.sleep(3)  # let the stopped execution's threads settle: nothing may close the job again
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events").json()["items"]
    finished = [e for e in events if e["type"] == "job.finished"]
    assert len(finished) == 1 and finished[0]["status"] == "CANCELLED"
    assert finished[0]["error"]["code"] == "Cancelled"
    assert http(local_cloud, "GET", f"/jobs/{job['jobId']}").json()["status"] == "CANCELLED"
    assert http(local_cloud, "DELETE", f"/jobs/{job['jobId']}").status_code == 409
