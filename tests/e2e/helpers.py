"""Small helpers for the end-to-end tests: raw HTTP and WebSocket calls as any client makes them."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
from websockets.sync.client import ClientConnection, connect

from longrun.tokens import make_token


def unique_name(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http(
    cloud: Any, method: str, path: str, user: str | None = "alice", token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}) or {})
    if token is None and user is not None:
        token = make_token(user)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, cloud.api + path, headers=headers, timeout=30, **kwargs)


def ws_connect(cloud: Any, user: str = "alice", token: str | None = None) -> ClientConnection:
    token = token if token is not None else make_token(user)
    return connect(f"{cloud.ws}?token={quote(token)}", open_timeout=10)


def recv_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(ws: ClientConnection, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """Every message up to and including the first that matches ``predicate``."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no matching message; got {seen}")
        message = recv_json(ws, remaining)
        seen.append(message)
        if predicate(message):
            return seen


def wait_for_status(cloud: Any, job_id: str, user: str = "alice", timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http(cloud, "GET", f"/jobs/{job_id}", user).json()
        if job["status"] != "RUNNING":
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still RUNNING")


def start_create_project(cloud: Any, user: str = "alice", prefix: str = "p") -> dict[str, Any]:
    """``POST /jobs`` of a create-project job with a fresh name; the accepted job."""
    body = {"type": "create-project", "params": {"name": unique_name(prefix)}}
    response = http(cloud, "POST", "/jobs", user, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def create_project(cloud: Any, user: str) -> str:
    """A fresh project of ``user``, made by a create-project job that succeeded; its id."""
    job = start_create_project(cloud, user)
    assert wait_for_status(cloud, job["jobId"], user)["status"] == "SUCCEEDED"
    return job["projectId"]


def settled_execution_status(sfn: Any, execution_arn: str, timeout: float = 30) -> str:
    """The execution's status once it has left ``RUNNING``.

    The job record turns final inside the workflow's last Lambda (notify), so a client that saw it
    can still find the execution ``RUNNING`` for the moment the engine takes to reach its end state.
    """
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=execution_arn)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return status


def operator_env(cloud: Any) -> dict[str, str]:
    """What `longrun local up` tells an operator to export: the standard AWS environment, pointed here."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": cloud.aws,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def stack_outputs(cloud: Any, stack: str = "longrun") -> dict[str, str]:
    """The stack's outputs, as an operator's tools find them (the local cloud registers them)."""
    found = cloud.aws_client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in found}
