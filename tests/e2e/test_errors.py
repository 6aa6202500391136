"""Every error of the contract's table that exists so far, as a client meets it."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from longrun.tokens import make_token
from tests.e2e.helpers import http, recv_json, ws_connect


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_malformed_json_is_400(local_cloud):
    response = http(
        local_cloud,
        "POST",
        "/jobs",
        content=b'{"type": "create-project", ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "ValidationError"


@pytest.mark.parametrize("body", [b"", b"[]", b'"text"', b"null", b"\xff\xfe"])
def test_bodies_that_are_not_objects_are_400(local_cloud, body):
    response = http(local_cloud, "POST", "/jobs", content=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "ValidationError"


def test_unknown_type_is_400_with_its_path(local_cloud):
    response = http(local_cloud, "POST", "/jobs", json={"type": "make-coffee", "params": {}})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "ValidationError"
    assert [d["path"] for d in error["details"]] == ["type"]


def test_every_schema_violation_is_listed_with_its_path(local_cloud):
    response = http(local_cloud, "POST", "/jobs", json={
        "type": "create-project", "params": {"name": "No!", "template": "cobol", "colour": "red"}, "extra": 1,
    })  # fmt: skip
    assert response.status_code == 400
    paths = sorted(d["path"] for d in error_of(response)["details"])
    assert paths == ["extra", "params.colour", "params.name", "params.name", "params.template"] or paths == [
        "extra", "params.colour", "params.name", "params.template"
    ]  # fmt: skip


def test_missing_required_param_names_its_path(local_cloud):
    response = http(local_cloud, "POST", "/jobs", json={"type": "create-project"})
    assert response.status_code == 400
    assert error_of(response)["details"] == [{"path": "params.name", "message": "is required"}]


@pytest.mark.parametrize("name", ["ab", "a" * 41, "Upper", "-lead", "trail-", "sp ace", "dot.ted", "ünï"])
def test_bad_project_names_are_400(local_cloud, name):
    response = http(local_cloud, "POST", "/jobs", json={"type": "create-project", "params": {"name": name}})
    assert response.status_code == 400
    assert {d["path"] for d in error_of(response)["details"]} == {"params.name"}


def test_body_over_256_kib_is_413(local_cloud):
    body = json.dumps({"type": "create-project", "params": {"name": "big-one", "pad": "x" * (256 * 1024)}})
    response = http(local_cloud, "POST", "/jobs", content=body.encode())
    assert response.status_code == 413
    assert error_of(response)["code"] == "PayloadTooLarge"


def test_no_token_is_401(local_cloud):
    response = http(local_cloud, "GET", "/jobs", user=None)
    assert response.status_code == 401
    assert error_of(response)["code"] == "Unauthorized"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, "not-the-secret", algorithm="HS256"),
        make_token("alice", ttl=-10),
        jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, None, algorithm="none"),
        jwt.encode({"exp": int(time.time()) + 600}, "longrun-local-development-secret", algorithm="HS256"),
        "not-a-jwt",
        "x" * 5000,
    ],
    ids=["forged", "expired", "alg-none", "no-sub", "garbage", "oversized"],
)
def test_bad_tokens_are_401(local_cloud, token):
    response = http(local_cloud, "GET", "/jobs", token=token)
    assert response.status_code == 401
    assert error_of(response)["code"] == "Unauthorized"


@pytest.mark.parametrize("path", ["/jobs/0123456789abcdef0123456789abcdef", "/jobs/nope/events", "/projects/prj-nope"])
def test_unknown_ids_are_404(local_cloud, path):
    response = http(local_cloud, "GET", path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "NotFound"


def test_unknown_route_is_404_in_the_contract_body(local_cloud):
    response = http(local_cloud, "GET", "/nothing/here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "NotFound"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "status=DONE", "cursor=%%%", "cursor=e30"])
def test_bad_list_queries_are_400(local_cloud, query):
    response = http(local_cloud, "GET", f"/jobs?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "ValidationError"


def test_bad_events_cursor_is_400(local_cloud):
    job = http(local_cloud, "POST", "/jobs", json={"type": "create-project", "params": {"name": "evt-cursor"}}).json()
    response = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events?after=-1")
    assert response.status_code == 400


def test_websocket_refuses_bad_tokens_at_connect(local_cloud):
    for token in ("", "garbage", make_token("alice", ttl=-5)):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(local_cloud, token=token).close()
        assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    "message",
    ["not json", "[1, 2]", '{"action": "dance"}', '{"action": "subscribe"}',
     '{"action": "subscribe", "jobId": 7}', '{"action": "subscribe", "jobId": "a", "projectId": "b"}'],
)  # fmt: skip
def test_websocket_messages_it_cannot_take_get_an_error(local_cloud, message):
    with ws_connect(local_cloud) as ws:
        ws.send(message)
        reply = recv_json(ws)
        assert reply["type"] == "error"
        assert reply["error"]["code"] == "ValidationError" and reply["error"]["message"]
        ws.send(json.dumps({"action": "ping"}))
        assert recv_json(ws) == {"type": "pong"}, "the connection stays usable after an error"
