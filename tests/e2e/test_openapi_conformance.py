"""Real responses of the local REST API checked against ``schemas/openapi.json``.

Every call a user makes, successes and errors alike, must match the document: a change to the
API that forgets the document (or the reverse) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.e2e.helpers import http, start_create_project, unique_name, wait_for_status

DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "openapi.json").read_text())
URI = "urn:longrun:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check(method: str, template: str, response) -> None:
    """The response's status is documented for the operation and its body matches the schema."""
    operation = DOCUMENT["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {template} answered undocumented {status}: {response.text}"
    documented = _resolve(operation["responses"][status])
    content = documented.get("content", {}).get("application/json")
    if content is None:
        return
    reference = _reference_to_schema(template, method.lower(), status, operation)
    validator = Draft202012Validator({"$ref": reference}, registry=REGISTRY)
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{method} {template} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _reference_to_schema(template: str, method: str, status: str, operation: dict) -> str:
    response = operation["responses"][status]
    base = response.get("$ref") or f"#/paths/{_escape(template)}/{method}/responses/{status}"
    return f"{URI}{base}/content/application~1json/schema"


@pytest.fixture(scope="module")
def finished_job(local_cloud):
    job = start_create_project(local_cloud, "olga")
    wait_for_status(local_cloud, job["jobId"], "olga")
    return job


def test_post_jobs_responses_match(local_cloud):
    check(
        "POST",
        "/jobs",
        http(local_cloud, "POST", "/jobs", "olga", json={"type": "create-project", "params": {"name": unique_name()}}),
    )
    check("POST", "/jobs", http(local_cloud, "POST", "/jobs", "olga", json={"type": "nope"}))
    check("POST", "/jobs", http(local_cloud, "POST", "/jobs", "olga", content=b"{"))
    check("POST", "/jobs", http(local_cloud, "POST", "/jobs", None))
    check("POST", "/jobs", http(local_cloud, "POST", "/jobs", "olga", content=b"x" * (300 * 1024)))


def test_job_reads_match(local_cloud, finished_job):
    job_id = finished_job["jobId"]
    check("GET", "/jobs/{jobId}", http(local_cloud, "GET", f"/jobs/{job_id}", "olga"))
    check("GET", "/jobs/{jobId}", http(local_cloud, "GET", f"/jobs/{job_id}", "mallory"))
    check("GET", "/jobs", http(local_cloud, "GET", "/jobs?limit=2", "olga"))
    check("GET", "/jobs", http(local_cloud, "GET", "/jobs?limit=0", "olga"))
    check("GET", "/jobs/{jobId}/events", http(local_cloud, "GET", f"/jobs/{job_id}/events", "olga"))
    check("GET", "/jobs/{jobId}/events", http(local_cloud, "GET", f"/jobs/{job_id}/events?after=x", "olga"))
    check("DELETE", "/jobs/{jobId}", http(local_cloud, "DELETE", f"/jobs/{job_id}", "olga"))
    check("GET", "/projects/{projectId}", http(local_cloud, "GET", f"/projects/{finished_job['projectId']}", "olga"))
    check("GET", "/projects/{projectId}", http(local_cloud, "GET", f"/projects/{finished_job['projectId']}", "eve"))
    check("GET", "/projects", http(local_cloud, "GET", "/projects?limit=1", "olga"))
    check("GET", "/projects", http(local_cloud, "GET", "/projects?limit=0", "olga"))
    check("GET", "/projects", http(local_cloud, "GET", "/projects?cursor=nope", "olga"))
    stranger = http(local_cloud, "DELETE", f"/projects/{finished_job['projectId']}", "eve")
    check("DELETE", "/projects/{projectId}", stranger)


def test_delete_project_responses_match(local_cloud):
    job = start_create_project(local_cloud, "olga")
    wait_for_status(local_cloud, job["jobId"], "olga")
    accepted = http(local_cloud, "DELETE", f"/projects/{job['projectId']}", "olga")
    check("DELETE", "/projects/{projectId}", accepted)
    assert accepted.status_code == 202
    # the project is deleting: its page shows it, and an upload URL is refused
    shown = http(local_cloud, "GET", f"/projects/{job['projectId']}", "olga")
    check("GET", "/projects/{projectId}", shown)
    assert wait_for_status(local_cloud, accepted.json()["jobId"], "olga", timeout=90)["status"] == "SUCCEEDED"
    check("DELETE", "/projects/{projectId}", http(local_cloud, "DELETE", f"/projects/{job['projectId']}", "olga"))


def test_checker_rejects_a_wrong_body():
    """The check itself can fail: a Job without its status is not a Job."""

    class Fake:
        status_code = 200
        text = ""

        @staticmethod
        def json():
            return {"jobId": "x", "type": "create-project"}

    with pytest.raises(AssertionError):
        check("GET", "/jobs/{jobId}", Fake())
