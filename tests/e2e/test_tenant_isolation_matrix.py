"""Every REST operation and every WebSocket action, tried by bob with alice's real ids.

test_isolation.py shows the common cases; this is the matrix. The list of operations comes from
``schemas/openapi.json``, so an operation added to the API without a case here fails the first
test. Each call is made twice: while alice's build is running and after it has finished (a
finished job is where "late subscribers get job.finished at once" could leak). Bob must get
``404`` (never ``403``: ids are not confirmed to strangers) with the contract's error body, or an
answer no different from the one an unknown id gets; over the WebSocket, an ``error`` and never
one of alice's events; and nothing bob does (cancel, retry, unsubscribe) changes alice's job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    create_project,
    http,
    recv_json,
    recv_until,
    unique_name,
    wait_for_status,
    ws_connect,
)
from tests.e2e.test_openapi_conformance import check

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = sorted(f"{m.upper()} {path}" for path, item in DOCUMENT["paths"].items() for m in item if m in METHODS)

# The REST calls of the matrix: for each documented operation, the requests bob makes with alice's ids.
# Each gives (method, path, extra httpx arguments).
Call = tuple[str, str, dict[str, Any]]
CASES: dict[str, Callable[[dict[str, str]], list[Call]]] = {
    "POST /jobs": lambda a: [
        ("POST", "/jobs", {"json": {"type": kind, "projectId": a["project"], "params": params}})
        for kind, params in (
            ("sync", {}),
            ("build", {"command": "cat /etc/hostname"}),
            ("git-clone", {"repoUrl": "https://example.com/r.git"}),
            ("git-merge", {"source": "a", "target": "b", "strategy": "merge"}),
            ("delete-project", {}),
        )
    ],
    "GET /jobs": lambda a: [("GET", f"/jobs?projectId={a['project']}", {})],
    "GET /jobs/{jobId}": lambda a: [("GET", f"/jobs/{a['job']}", {}), ("GET", f"/jobs/{a['create_job']}", {})],
    "DELETE /jobs/{jobId}": lambda a: [("DELETE", f"/jobs/{a['job']}", {})],
    "GET /jobs/{jobId}/events": lambda a: [
        ("GET", f"/jobs/{a['job']}/events", {}),
        ("GET", f"/jobs/{a['job']}/events?after=0", {}),
        ("GET", f"/jobs/{a['job']}/events?after=1", {}),
        ("GET", f"/jobs/{a['create_job']}/events?after=2", {}),
    ],
    "POST /jobs/{jobId}/retry": lambda a: [("POST", f"/jobs/{a['job']}/retry", {})],
    "GET /projects": lambda a: [("GET", "/projects", {}), ("GET", "/projects?limit=1", {})],
    "GET /projects/{projectId}": lambda a: [("GET", f"/projects/{a['project']}", {})],
    "DELETE /projects/{projectId}": lambda a: [("DELETE", f"/projects/{a['project']}", {})],
    "POST /projects/{projectId}/uploads": lambda a: [
        ("POST", f"/projects/{a['project']}/uploads", {"json": {"path": "src/x.txt", "contentType": "text/plain"}})
    ],
    "POST /projects/{projectId}/downloads": lambda a: [
        # A file alice's project holds (the scaffold's), and one it does not: both 404 for bob, alike.
        ("POST", f"/projects/{a['project']}/downloads", {"json": {"path": "longrun.json"}}),
        ("POST", f"/projects/{a['project']}/downloads", {"json": {"path": "no-such-file.txt"}}),
    ],
}


def _template(operation: str) -> str:
    return operation.split(" ", 1)[1]


@pytest.fixture(scope="module")
def tenants(local_cloud: Any) -> dict[str, str]:
    """Alice with a project (and the create-project job that made it); bob with nothing of hers."""
    alice, bob = unique_name("alice"), unique_name("bob")
    project = create_project(local_cloud, alice)
    listed = http(local_cloud, "GET", f"/jobs?projectId={project}", alice).json()["items"]
    return {"alice": alice, "bob": bob, "project": project, "create_job": listed[0]["jobId"]}


def test_every_documented_operation_has_a_case() -> None:
    """An operation added to schemas/openapi.json without a row here fails: none can be forgotten."""
    assert sorted(CASES) == OPERATIONS


def _bob_tries_everything(cloud: Any, ids: dict[str, str], secret_bits: list[str]) -> int:
    """Every case as bob; each must be 404 NotFound (or, for a listing, an empty page). The number tried."""
    tried = 0
    for operation, calls in CASES.items():
        for method, path, extra in calls(ids):
            response = http(cloud, method, path, ids["bob"], **extra)
            where = f"bob {method} {path}: {response.status_code} {response.text[:200]}"
            check(method, _template(operation), response)
            if operation == "GET /projects":
                # The caller's own projects only: bob has none, so an empty page, whatever alice has.
                assert response.status_code == 200, where
                assert response.json() == {"items": [], "nextCursor": None}, where
            elif operation == "GET /jobs":
                # The caller's own jobs only: alice's project filters bob's (empty) list, exactly as an
                # unknown project would, so the answer confirms nothing.
                assert response.status_code == 200, where
                assert response.json() == {"items": [], "nextCursor": None}, where
                unknown = http(cloud, "GET", "/jobs?projectId=prj-does-not-exist", ids["bob"])
                assert unknown.json() == response.json()
            else:
                assert response.status_code == 404, where
                assert response.json()["error"]["code"] == "NotFound", where
            for bit in secret_bits:
                assert bit not in response.text, f"{where} shows alice's {bit!r}"
            tried += 1
    return tried


def _bob_ws_tries(bob_ws: Any, ids: dict[str, str]) -> list[dict[str, Any]]:
    """Subscribe and unsubscribe, by job (both jobs) and by project: the replies bob gets."""
    replies = []
    for action in ("subscribe", "unsubscribe"):
        for target in ({"jobId": ids["job"]}, {"jobId": ids["create_job"]}, {"projectId": ids["project"]}):
            bob_ws.send(json.dumps({"action": action, **target}))
            reply = recv_json(bob_ws)
            replies.append(reply)
            if action == "subscribe":
                assert reply["type"] == "error" and reply["error"]["code"] == "NotFound", reply
            else:
                assert reply["type"] in ("unsubscribed", "error"), reply
    return replies


def test_bob_gets_nothing_of_alices_while_her_job_runs_and_after(local_cloud: Any, tenants: dict[str, str]) -> None:
    alice, bob = tenants["alice"], tenants["bob"]
    command = "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done"
    started = http(local_cloud, "POST", "/jobs", alice,
                   json={"type": "build", "projectId": tenants["project"], "params": {"command": command}})  # fmt: skip
    assert started.status_code == 202, started.text
    ids = {**tenants, "job": started.json()["jobId"]}
    name = http(local_cloud, "GET", f"/projects/{ids['project']}", alice).json()["name"]
    secret_bits = [name, "tick-", alice]

    with ws_connect(local_cloud, alice) as alice_ws, ws_connect(local_cloud, bob) as bob_ws:
        alice_ws.send(json.dumps({"action": "subscribe", "jobId": ids["job"]}))
        alice_ws.send(json.dumps({"action": "subscribe", "projectId": ids["project"]}))
        # Bob subscribes first on his connection, then the whole REST matrix while the build runs.
        bob_replies = _bob_ws_tries(bob_ws, ids)
        assert http(local_cloud, "GET", f"/jobs/{ids['job']}", alice).json()["status"] == "RUNNING", (
            "the matrix must run while alice's job runs"
        )
        tried = _bob_tries_everything(local_cloud, ids, secret_bits)

        alice_seen = recv_until(
            alice_ws, lambda m: m.get("type") == "job.finished" and m.get("jobId") == ids["job"], timeout=90
        )
        # Bob's cancel and retry did nothing: alice's build ran to its end and she was told.
        finished = alice_seen[-1]
        assert finished["status"] == "SUCCEEDED", finished
        assert any(m.get("type") == "job.log" for m in alice_seen), "alice's own subscriber got her build's output"
        assert wait_for_status(local_cloud, ids["job"], alice)["status"] == "SUCCEEDED"

        # After the end: a finished job's job.finished replays at once to a subscriber, never to bob.
        bob_replies += _bob_ws_tries(bob_ws, ids)
        tried += _bob_tries_everything(local_cloud, ids, secret_bits)
        bob_ws.send(json.dumps({"action": "ping"}))
        bob_replies += recv_until(bob_ws, lambda m: m.get("type") == "pong", timeout=10)

    pushed = [m for m in bob_replies if str(m.get("type", "")).startswith("job.")]
    assert pushed == [], f"bob received alice's events: {pushed[:3]}"
    for bit in secret_bits:
        assert bit not in json.dumps(bob_replies), f"bob's WebSocket showed alice's {bit!r}"
    assert tried == 2 * sum(len(calls(ids)) for calls in CASES.values())

    # And alice still sees all of it: bob's attempts changed nothing of hers.
    events = http(local_cloud, "GET", f"/jobs/{ids['job']}/events", alice).json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "job.finished" and events[-1]["status"] == "SUCCEEDED"


def test_bob_cannot_continue_alices_listing(local_cloud: Any, tenants: dict[str, str]) -> None:
    """A cursor names a position in alice's list; in bob's hands it is refused, with none of her jobs."""
    alice, bob = tenants["alice"], tenants["bob"]
    http(local_cloud, "POST", "/jobs", alice, json={"type": "sync", "projectId": tenants["project"], "params": {}})
    page = http(local_cloud, "GET", "/jobs?limit=1", alice).json()
    assert page["nextCursor"], "alice has more than one job"
    response = http(local_cloud, "GET", "/jobs", bob, params={"limit": 1, "cursor": page["nextCursor"]})
    assert response.status_code == 400, response.text
    check("GET", "/jobs", response)
    assert tenants["project"] not in response.text
