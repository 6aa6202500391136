"""One domain, end to end: a local cloud that maps the REST API under ``/api``, the WebSocket under ``/events``.

``longrun local up --parameter …`` gives the template the parameters ``sam deploy
--parameter-overrides`` would (docs/deploy.md, "One domain"); the local fronts serve the mapped
paths on their own ports, and the stack's outputs name them. A user of such a deployment knows
the base URL (the ``RestApiUrl`` output) and nothing else: every job they start must be reachable
from what the answer gives them, its ``Location`` resolved against the URL they asked (RFC 9110)
and its ``links`` joined to the base URL (docs/contract.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import pytest
from websockets.sync.client import connect

from longrun.tokens import make_token
from tests.conftest import REPO, LocalCloud, started_local_cloud
from tests.e2e.helpers import recv_until, unique_name

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
DOMAIN_PARAMETERS = {
    "RestApiDomainName": "platform.example.test",
    "RestApiBasePath": "api",
    "WebSocketDomainName": "ws.platform.example.test",
    "WebSocketBasePath": "events",
    "DomainCertificateArn": CERT,
    "HostedZoneId": "Z0123456789ABCDEFGHIJ",
}


@pytest.fixture(scope="module")
def mapped_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    options = [arg for key, value in DOMAIN_PARAMETERS.items() for arg in ("--parameter", f"{key}={value}")]
    with started_local_cloud(tmp_path_factory.mktemp("mapped-cloud"), *options) as cloud:
        yield cloud


def outputs(cloud: LocalCloud) -> dict[str, str]:
    stack = cloud.aws_client("cloudformation").describe_stacks(StackName="longrun")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def call(method: str, url: str, user: str = "alice", **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    return httpx.request(method, url, headers=headers, timeout=30, **kwargs)


def test_the_outputs_name_the_mapped_urls(mapped_cloud: LocalCloud) -> None:
    found = outputs(mapped_cloud)

    assert found["RestApiUrl"] == mapped_cloud.api + "/api"
    assert found["ConsoleUrl"] == mapped_cloud.api + "/api/static/console/index.html"
    assert found["WebSocketUrl"] == mapped_cloud.ws.rsplit("/", 1)[0] + "/events"
    assert found["RestApiStageUrl"] == mapped_cloud.api  # the local stage is served at the root (local-cloud.md)
    assert found["RestApiDomainTarget"].endswith(".execute-api.us-east-1.amazonaws.com")


def test_a_job_started_under_the_base_path_is_reached_from_its_answer(mapped_cloud: LocalCloud) -> None:
    base = outputs(mapped_cloud)["RestApiUrl"]
    ws_url = outputs(mapped_cloud)["WebSocketUrl"]
    with connect(f"{ws_url}?token={quote(make_token('alice'))}", open_timeout=10) as ws:
        started = call("POST", f"{base}/jobs", json={"type": "create-project", "params": {"name": unique_name("dom")}})
        assert started.status_code == 202, started.text
        job = started.json()
        location = urljoin(f"{base}/jobs", started.headers["Location"])
        assert location == f"{base}/jobs/{job['jobId']}"
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        finished = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=60)[-1]

    assert finished["status"] == "SUCCEEDED", finished
    read = call("GET", location)
    assert read.status_code == 200 and read.json()["jobId"] == job["jobId"]
    assert base + job["links"]["self"] == location
    events = call("GET", base + job["links"]["events"])
    assert events.status_code == 200 and events.json()["items"][-1]["seq"] == finished["seq"]
    project = call("GET", f"{base}/projects/{job['projectId']}")
    assert project.status_code == 200 and project.json()["projectId"] == job["projectId"]


def test_the_stage_url_and_the_root_answer_beside_the_mapping(mapped_cloud: LocalCloud) -> None:
    """At /{stage}/ the local front answers as the stage URL does: the stage is in front of each Location."""
    stage = mapped_cloud.api + "/local"
    started = call("POST", f"{stage}/jobs", json={"type": "create-project", "params": {"name": unique_name("stg")}})
    assert started.status_code == 202, started.text
    job_id = started.json()["jobId"]
    assert started.headers["Location"] == f"/local/jobs/{job_id}"
    assert call("GET", urljoin(f"{stage}/jobs", started.headers["Location"])).status_code == 200
    assert call("GET", f"{mapped_cloud.api}/jobs/{job_id}").status_code == 200
    missing = call("GET", f"{mapped_cloud.api}/apiary/jobs/{job_id}")  # only whole segments are the base path
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"


def test_the_console_opens_under_the_base_path_and_may_reach_the_websocket(mapped_cloud: LocalCloud) -> None:
    page = httpx.get(outputs(mapped_cloud)["ConsoleUrl"], timeout=30)

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "wss://ws.platform.example.test" in policy and mapped_cloud.ws.rsplit("/", 1)[0] in policy


def test_local_up_refuses_a_base_path_without_its_domain(tmp_path: Path) -> None:
    """The template's Rules, as CloudFormation applies them before it creates anything."""
    result = subprocess.run(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--data-dir", str(tmp_path / "data"),
         "--parameter", "RestApiBasePath=api"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Rules.RestBasePathNeedsDomain" in result.stderr and "RestApiDomainName" in result.stderr
