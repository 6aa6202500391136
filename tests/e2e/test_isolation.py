"""Two users never see each other's jobs, projects or events."""

from __future__ import annotations

import json

from tests.e2e.helpers import (
    http,
    recv_json,
    recv_until,
    start_create_project,
    unique_name,
    wait_for_status,
    ws_connect,
)


def test_users_cannot_see_each_others_jobs_projects_or_events(local_cloud):
    alice_job = start_create_project(local_cloud, "alice", "a")
    bob_job = start_create_project(local_cloud, "bob", "b")
    wait_for_status(local_cloud, alice_job["jobId"], "alice")
    wait_for_status(local_cloud, bob_job["jobId"], "bob")

    for path in (
        f"/jobs/{alice_job['jobId']}",
        f"/jobs/{alice_job['jobId']}/events",
        f"/projects/{alice_job['projectId']}",
    ):
        response = http(local_cloud, "GET", path, "bob")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "NotFound"
    assert http(local_cloud, "DELETE", f"/jobs/{alice_job['jobId']}", "bob").status_code == 404

    bob_list = http(local_cloud, "GET", "/jobs?limit=100", "bob").json()["items"]
    assert alice_job["jobId"] not in {j["jobId"] for j in bob_list}
    assert bob_job["jobId"] in {j["jobId"] for j in bob_list}
    by_project = http(local_cloud, "GET", f"/jobs?projectId={alice_job['projectId']}", "bob").json()
    assert by_project["items"] == []

    # Another user's project id in a job request is "not found", never "forbidden".
    response = http(
        local_cloud,
        "POST",
        "/jobs",
        "bob",
        json={"type": "create-project", "params": {"name": unique_name()}, "projectId": "x"},
    )
    assert response.status_code == 400  # create-project takes no projectId at all

    with ws_connect(local_cloud, "bob") as ws:
        for target in ({"jobId": alice_job["jobId"]}, {"projectId": alice_job["projectId"]}):
            ws.send(json.dumps({"action": "subscribe", **target}))
            reply = recv_json(ws)
            assert reply["type"] == "error" and reply["error"]["code"] == "NotFound"


def test_a_subscriber_receives_only_its_users_events(local_cloud):
    with ws_connect(local_cloud, "carol") as carol_ws, ws_connect(local_cloud, "dave") as dave_ws:
        carol_job = start_create_project(local_cloud, "carol", "c")
        dave_job = start_create_project(local_cloud, "dave", "d")
        carol_ws.send(json.dumps({"action": "subscribe", "jobId": carol_job["jobId"]}))
        dave_ws.send(json.dumps({"action": "subscribe", "jobId": dave_job["jobId"]}))
        carol_seen = recv_until(carol_ws, lambda m: m.get("type") == "job.finished", timeout=60)
        dave_seen = recv_until(dave_ws, lambda m: m.get("type") == "job.finished", timeout=60)
    assert {m.get("jobId") for m in carol_seen} == {carol_job["jobId"]}
    assert {m.get("jobId") for m in dave_seen} == {dave_job["jobId"]}


def test_listing_pages_through_the_callers_jobs_only(local_cloud):
    user = unique_name("lister")
    made = [start_create_project(local_cloud, user)["jobId"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = http(local_cloud, "GET", f"/jobs?{query}", user).json()
        assert len(page["items"]) <= 2
        seen += [j["jobId"] for j in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    # a cursor is bound to its listing: another user cannot continue it
    first = http(local_cloud, "GET", "/jobs?limit=1", user).json()
    assert http(local_cloud, "GET", f"/jobs?limit=1&cursor={first['nextCursor']}", "alice").status_code == 400
