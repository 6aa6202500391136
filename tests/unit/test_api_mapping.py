"""The REST API at its stage URL and behind a custom domain's API mapping (handlers/api/mapping.py).

The events are shaped as API Gateway sends them at each address (docs/contract.md, "Base URL"):
at the stage, ``path`` lacks the stage that ``requestContext.path`` has; through a mapping both
carry the base path (Powertools' "Custom Domain API Mappings"). A user follows ``Location`` by
resolving it against the URL they asked (RFC 9110), and joins ``links`` to the API's base URL.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urljoin

import pytest

from api import app as api_app
from api import mapping

from .conftest import USER, FakeContext

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

STAGE = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
DOMAIN = "https://platform.example.com/api"


def event(url: str, method: str = "GET", body: Any = None, *, resource: str | None = None) -> dict[str, Any]:
    """The Lambda proxy event (v1) API Gateway sends for ``url``: the stage's, or a mapping's on its domain."""
    host, _, full_path = url.removeprefix("https://").partition("/")
    full_path = "/" + full_path
    at_stage = host.endswith(".amazonaws.com")
    path = full_path.split("/", 2)[2] if at_stage else full_path
    path = "/" + path if at_stage else path
    headers = {"Host": host, "Authorization": "Bearer x", "Content-Type": "application/json"}
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": full_path,
            "domainName": host,
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "authorizer": {"principalId": USER, "userId": USER},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def send(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, str], Any]:
    response = api_app.handler(event(url, method, body), FakeContext(function_name="unit-ApiFunction"))
    payload = json.loads(response["body"]) if response.get("body") else None
    headers = dict(response.get("headers") or {})
    headers.update({name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], headers, payload


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The function as the template sets it up with RestApiBasePath=api."""
    monkeypatch.setenv("API_BASE_PATH", "api")


@pytest.mark.parametrize("base", [STAGE, DOMAIN], ids=["stage-url", "custom-domain"])
def test_a_jobs_location_and_links_resolve_where_it_was_started(aws, mapped, base: str) -> None:
    status, headers, body = send(f"{base}/jobs", "POST", {"type": "create-project", "params": {"name": "mapped"}})

    assert status == 202, body
    job_id = body["jobId"]
    location = urljoin(f"{base}/jobs", headers["Location"])
    assert location == f"{base}/jobs/{job_id}"
    # links are relative to the API's base URL (the contract): joined, they name the same job.
    assert base + body["links"]["self"] == location
    status, _, job = send(location)
    assert (status, job["jobId"]) == (200, job_id)
    status, _, events = send(base + body["links"]["events"])
    assert status == 200 and isinstance(events["items"], list)


def test_without_the_base_path_configured_a_mapped_request_finds_no_route(aws) -> None:
    """What RestApiBasePath's API_BASE_PATH is for: Powertools routes on the path with /api in it."""
    status, _, body = send(f"{DOMAIN}/jobs", "POST", {"type": "create-project", "params": {"name": "unmapped"}})

    assert status == 404 and body["error"]["code"] == "NotFound"


def test_the_domains_root_mapping_keeps_plain_paths(aws) -> None:
    status, headers, body = send("https://platform.example.com/jobs", "POST",
                                 {"type": "create-project", "params": {"name": "rooted"}})  # fmt: skip

    assert status == 202, body
    assert headers["Location"] == f"/jobs/{body['jobId']}"


def test_a_stage_path_that_starts_like_the_base_path_is_not_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the stage, path and requestContext.path differ: the base path is never stripped there."""
    monkeypatch.setenv("API_BASE_PATH", "jobs")
    stage_event = event(f"{STAGE}/jobs/job-1")

    assert mapping.routed(stage_event)["path"] == "/jobs/job-1"
    assert mapping.public_path(stage_event, "/jobs/job-1") == "/prod/jobs/job-1"
    mapped_event = event("https://platform.example.com/jobs/jobs/job-1")
    assert mapping.routed(mapped_event)["path"] == "/jobs/job-1"
    assert mapping.public_path(mapped_event, "/jobs/job-1") == "/jobs/jobs/job-1"


@pytest.mark.parametrize(
    ("configured", "path", "routed"),
    [
        ("api", "/api", "/"),
        ("/api/", "/api/jobs", "/jobs"),
        ("longrun/v1", "/longrun/v1/jobs/x/events", "/jobs/x/events"),
        ("api", "/apiary/jobs", "/apiary/jobs"),  # a path that only begins with the same letters
    ],
)
def test_the_base_path_is_taken_off_whole_segments(monkeypatch, configured: str, path: str, routed: str) -> None:
    monkeypatch.setenv("API_BASE_PATH", configured)

    assert mapping.routed(event(f"https://platform.example.com{path}"))["path"] == routed
