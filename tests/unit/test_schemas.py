"""The JSON Schemas in ``schemas/`` and the OpenAPI document: valid, consistent, strict where it matters."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EVENTS = SCHEMAS / "events"
EVENTS_BASE = "https://longrun.dev/schemas/events/"
OPENAPI = SCHEMAS / "openapi.json"
OPENAPI_URI = "urn:longrun:openapi"

EVENT_FILES = [
    "subscribed.json",
    "unsubscribed.json",
    "pong.json",
    "error.json",
    "job-progress.json",
    "job-log.json",
    "job-finished.json",
]
ERROR_CODES = ["ValidationError", "Unauthorized", "NotFound", "Conflict", "ProjectBusy", "PayloadTooLarge", "Throttled"]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

AT = "2025-01-02T03:04:05.678Z"


def load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema_files() -> list[Path]:
    return sorted(p for p in SCHEMAS.rglob("*.json") if p != OPENAPI)


def registry() -> Registry:
    """Every schema file by its ``$id``, and the OpenAPI document under ``OPENAPI_URI``."""
    resources = [(load(p)["$id"], Resource.from_contents(load(p))) for p in schema_files()]
    resources.append((OPENAPI_URI, DRAFT202012.create_resource(load(OPENAPI))))
    return Registry().with_resources(resources)


def validator(uri: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": uri}, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def event_validator(name: str) -> Draft202012Validator:
    return validator(EVENTS_BASE + name)


def component_validator(name: str) -> Draft202012Validator:
    return validator(f"{OPENAPI_URI}#/components/schemas/{name}")


def refs(node: Any) -> list[str]:
    """Every ``$ref`` value anywhere in ``node``."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in load(OPENAPI)["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def resolve_local(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# --- every schema is a valid schema -------------------------------------------------------------


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: str(p.relative_to(SCHEMAS)))
def test_schema_is_valid_for_its_metaschema(path: Path) -> None:
    schema = load(path)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", [*EVENT_FILES, "message.json"])
def test_event_schema_has_its_id(name: str) -> None:
    assert load(EVENTS / name)["$id"] == EVENTS_BASE + name


def test_ids_are_unique() -> None:
    ids = [load(p)["$id"] for p in schema_files()]
    assert len(ids) == len(set(ids))


def test_openapi_document_is_valid() -> None:
    doc = load(OPENAPI)
    assert doc["openapi"] == "3.1.0"
    try:
        from openapi_spec_validator import validate
    except ImportError:
        validate = None
    if validate is not None:
        validate(doc)
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_openapi_local_refs_resolve() -> None:
    doc = load(OPENAPI)
    for ref in refs(doc):
        assert resolve_local(doc, ref) is not None, ref


# --- message.json -------------------------------------------------------------------------------


def test_message_refs_every_event_file_and_they_resolve() -> None:
    message = load(EVENTS / "message.json")
    found = refs(message)
    assert sorted(found) == sorted(EVENT_FILES)
    resolver = registry().resolver(base_uri=message["$id"])
    for ref in found:
        resolved = resolver.lookup(ref)
        assert resolved.contents == load(EVENTS / ref), ref


# --- examples -----------------------------------------------------------------------------------

PROGRESS = {
    "type": "job.progress",
    "jobId": "a1b2c3",
    "projectId": "prj-1",
    "seq": 1,
    "at": AT,
    "step": "CreateRepo",
    "status": "STARTED",
    "detail": {},
}
LOG = {
    "type": "job.log",
    "jobId": "a1b2c3",
    "projectId": "prj-1",
    "seq": 4,
    "at": AT,
    "lines": ["npm ci", "ok"],
}
FINISHED_OK = {
    "type": "job.finished",
    "jobId": "a1b2c3",
    "projectId": "prj-1",
    "seq": 9,
    "at": AT,
    "status": "SUCCEEDED",
    "result": {
        "projectId": "prj-1",
        "s3Prefix": "u/prj-1/",
        "workspace": "/mnt/w/prj-1",
        "defaultBranch": "main",
    },
}
FINISHED_FAILED = {
    "type": "job.finished",
    "jobId": "a1b2c3",
    "projectId": None,
    "seq": 3,
    "at": AT,
    "status": "FAILED",
    "error": {"code": "MergeConflict", "message": "conflicts", "details": {"paths": ["a.txt"]}},
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def without(base: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(base).items() if k not in keys}


GOOD: list[tuple[str, dict[str, Any]]] = [
    ("subscribed.json", {"type": "subscribed", "jobId": "a1b2c3"}),
    ("subscribed.json", {"type": "subscribed", "projectId": "prj-1"}),
    ("unsubscribed.json", {"type": "unsubscribed", "jobId": "a1b2c3"}),
    ("unsubscribed.json", {"type": "unsubscribed", "projectId": "prj-1"}),
    ("pong.json", {"type": "pong"}),
    ("error.json", {"type": "error", "error": {"code": "ValidationError", "message": "unknown action"}}),
    ("job-progress.json", PROGRESS),
    (
        "job-progress.json",
        with_(PROGRESS, projectId=None, status="RETRYING", detail={"attempt": 2, "why": "x"}),
    ),
    ("job-progress.json", with_(PROGRESS, at="2025-01-02T03:04:05+02:00")),
    ("job-log.json", LOG),
    ("job-log.json", with_(LOG, projectId=None, lines=[])),
    ("job-finished.json", FINISHED_OK),
    ("job-finished.json", with_(FINISHED_OK, result=None)),
    ("job-finished.json", FINISHED_FAILED),
    (
        "job-finished.json",
        with_(FINISHED_FAILED, status="CANCELLED", error={"code": "Cancelled", "message": "m"}),
    ),
    (
        "job-finished.json",
        with_(FINISHED_FAILED, status="TIMED_OUT", error={"code": "TimedOut", "message": "m"}),
    ),
]

BAD: list[tuple[str, str, dict[str, Any]]] = [
    ("subscribed with neither id", "subscribed.json", {"type": "subscribed"}),
    ("subscribed with both ids", "subscribed.json", {"type": "subscribed", "jobId": "a", "projectId": "b"}),
    ("subscribed with an extra field", "subscribed.json", {"type": "subscribed", "jobId": "a", "x": 1}),
    ("subscribed with a non-string id", "subscribed.json", {"type": "subscribed", "jobId": 7}),
    ("unsubscribed typed as subscribed", "unsubscribed.json", {"type": "subscribed", "jobId": "a"}),
    (
        "unsubscribed with both ids",
        "unsubscribed.json",
        {"type": "unsubscribed", "jobId": "a", "projectId": "b"},
    ),
    ("pong with an extra field", "pong.json", {"type": "pong", "at": AT}),
    ("pong typed as ping", "pong.json", {"type": "ping"}),
    ("error without error", "error.json", {"type": "error"}),
    ("error without message", "error.json", {"type": "error", "error": {"code": "X"}}),
    ("error as a string", "error.json", {"type": "error", "error": "bad"}),
    ("progress with seq 0", "job-progress.json", with_(PROGRESS, seq=0)),
    ("progress with seq as a string", "job-progress.json", with_(PROGRESS, seq="1")),
    ("progress with seq 1.5", "job-progress.json", with_(PROGRESS, seq=1.5)),
    ("progress with an unknown status", "job-progress.json", with_(PROGRESS, status="RUNNING")),
    ("progress without detail", "job-progress.json", without(PROGRESS, "detail")),
    ("progress with detail a list", "job-progress.json", with_(PROGRESS, detail=[])),
    ("progress without projectId", "job-progress.json", without(PROGRESS, "projectId")),
    ("progress without step", "job-progress.json", without(PROGRESS, "step")),
    ("progress with an extra field", "job-progress.json", with_(PROGRESS, extra=True)),
    ("progress with at a number", "job-progress.json", with_(PROGRESS, at=1735787045)),
    ("log with lines a string", "job-log.json", with_(LOG, lines="npm ci")),
    ("log with a non-string line", "job-log.json", with_(LOG, lines=["ok", 3])),
    ("log without lines", "job-log.json", without(LOG, "lines")),
    ("log with seq 0", "job-log.json", with_(LOG, seq=0)),
    (
        "finished with both result and error",
        "job-finished.json",
        with_(FINISHED_OK, error={"code": "X", "message": "m"}),
    ),
    ("finished with neither result nor error", "job-finished.json", without(FINISHED_OK, "result")),
    (
        "finished FAILED with only a result",
        "job-finished.json",
        with_(without(FINISHED_FAILED, "error"), result={}),
    ),
    (
        "finished SUCCEEDED with only an error",
        "job-finished.json",
        with_(FINISHED_FAILED, status="SUCCEEDED"),
    ),
    ("finished with status RUNNING", "job-finished.json", with_(FINISHED_OK, status="RUNNING")),
    (
        "finished with an error without code",
        "job-finished.json",
        with_(FINISHED_FAILED, error={"message": "m"}),
    ),
    (
        "finished with an error with extras",
        "job-finished.json",
        with_(FINISHED_FAILED, error={"code": "X", "message": "m", "cause": "c"}),
    ),
    ("finished with seq 0", "job-finished.json", with_(FINISHED_OK, seq=0)),
    ("finished without at", "job-finished.json", without(FINISHED_OK, "at")),
]

if "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers:
    BAD.append(("progress with at not a date-time", "job-progress.json", with_(PROGRESS, at="yesterday")))


@pytest.mark.parametrize(("name", "message"), GOOD, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GOOD)])
def test_good_message_is_accepted(name: str, message: dict[str, Any]) -> None:
    event_validator(name).validate(message)
    event_validator("message.json").validate(message)


@pytest.mark.parametrize(("name", "message"), [(n, m) for _, n, m in BAD], ids=[d for d, _, _ in BAD])
def test_bad_message_is_refused(name: str, message: dict[str, Any]) -> None:
    assert not event_validator(name).is_valid(message)
    if message.get("type") == load(EVENTS / name)["properties"]["type"]["const"]:
        # as a message of its own type, it is refused by the union too
        assert not event_validator("message.json").is_valid(message)


def test_unknown_message_type_is_refused() -> None:
    assert not event_validator("message.json").is_valid({"type": "job.started", "jobId": "a"})


# --- the OpenAPI document follows the contract --------------------------------------------------


@pytest.mark.parametrize(
    ("component", "path"),
    [
        ("JobRequest", SCHEMAS / "job-request.json"),
        ("JobProgressEvent", EVENTS / "job-progress.json"),
        ("JobLogEvent", EVENTS / "job-log.json"),
        ("JobFinishedEvent", EVENTS / "job-finished.json"),
    ],
)
def test_openapi_component_copies_its_schema_file(component: str, path: Path) -> None:
    original = {k: v for k, v in load(path).items() if k not in ("$schema", "$id")}
    assert load(OPENAPI)["components"]["schemas"][component] == original


def test_every_operation_answers_401_404_and_4xx_use_the_error_component() -> None:
    doc = load(OPENAPI)
    for path, method, op in operations():
        responses = op["responses"]
        assert {"401", "404"} <= set(responses), (path, method)
        for status, response in responses.items():
            if status.startswith("4"):
                target = resolve_local(doc, response["$ref"]) if "$ref" in response else response
                schema = target["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_error_component() -> None:
    error = load(OPENAPI)["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["properties"]["code"]["enum"] == ERROR_CODES
    assert error["required"] == ["code", "message"]
    ok = component_validator("Error")
    ok.validate({"error": {"code": "NotFound", "message": "job x not found"}})
    ok.validate(
        {
            "error": {
                "code": "ValidationError",
                "message": "m",
                "details": [{"path": "params.name", "message": "m"}],
            }
        }
    )
    assert not ok.is_valid({"error": {"code": "Teapot", "message": "m"}})
    assert not ok.is_valid({"error": {"code": "NotFound"}})
    assert not ok.is_valid({"error": {"code": "ValidationError", "message": "m", "details": [{"path": "p"}]}})


def test_operations_and_planned_ones() -> None:
    found = {(path, method) for path, method, _ in operations()}
    assert found == {
        ("/jobs", "post"),
        ("/jobs", "get"),
        ("/jobs/{jobId}", "get"),
        ("/jobs/{jobId}", "delete"),
        ("/jobs/{jobId}/events", "get"),
        ("/jobs/{jobId}/retry", "post"),
        ("/projects", "get"),
        ("/projects/{projectId}", "get"),
        ("/projects/{projectId}", "delete"),
        ("/projects/{projectId}/uploads", "post"),
        ("/projects/{projectId}/downloads", "post"),
    }
    planned = {(path, method) for path, method, op in operations() if op.get("x-longrun-status") == "planned"}
    assert planned == set()


def test_post_jobs() -> None:
    doc = load(OPENAPI)
    op = doc["paths"]["/jobs"]["post"]
    assert set(op["responses"]) == {"202", "400", "401", "404", "409", "413", "429", "503"}
    assert "Location" in op["responses"]["202"]["headers"]
    key = resolve_local(doc, op["parameters"][0]["$ref"])
    assert (key["name"], key["in"], key["schema"]["minLength"], key["schema"]["maxLength"]) == (
        "Idempotency-Key",
        "header",
        1,
        128,
    )
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"


JOB = {
    "jobId": "a1b2c3",
    "type": "create-project",
    "projectId": None,
    "status": "RUNNING",
    "createdAt": AT,
    "updatedAt": AT,
    "steps": [
        {"name": "ReserveName", "status": "SUCCEEDED", "startedAt": AT, "endedAt": AT},
        {"name": "WriteScaffold", "status": "STARTED", "startedAt": AT, "endedAt": None},
    ],
    "result": None,
    "error": None,
    "executionArn": "arn:aws:states:us-east-1:123456789012:execution:create-project:x",
    "links": {"self": "/jobs/a1b2c3", "events": "/jobs/a1b2c3/events"},
}


def test_job_and_responses_examples() -> None:
    component_validator("Job").validate(JOB)
    component_validator("Job").validate(
        with_(JOB, status="FAILED", error={"code": "NameTaken", "message": "m", "details": None})
    )
    assert not component_validator("Job").is_valid(without(JOB, "links"))
    assert not component_validator("Job").is_valid(with_(JOB, status="PENDING"))
    assert not component_validator("Job").is_valid(with_(JOB, userId="u1"))
    accepted = {k: JOB[k] for k in ("jobId", "type", "projectId", "status", "executionArn", "createdAt", "links")}
    component_validator("JobAccepted").validate(accepted)
    assert not component_validator("JobAccepted").is_valid(without(accepted, "executionArn"))
    component_validator("JobList").validate({"items": [JOB], "nextCursor": None})
    assert not component_validator("JobList").is_valid({"items": [JOB]})
    component_validator("JobEventList").validate({"items": [PROGRESS, LOG, FINISHED_OK]})
    assert not component_validator("JobEventList").is_valid({"items": [{"type": "pong"}]})
    component_validator("Project").validate(
        {
            "projectId": "prj-1",
            "name": "my-site",
            "template": "web-app",
            "s3Prefix": "u/prj-1/",
            "workspace": "/mnt/w/prj-1",
            "defaultBranch": "main",
            "createdAt": AT,
            "jobId": "a1b2c3",
            "status": "deleting",
        }
    )
    component_validator("ProjectList").validate({"items": [], "nextCursor": None})
    assert not component_validator("ProjectList").is_valid({"items": [{"projectId": "prj-1"}], "nextCursor": None})
    component_validator("UploadTicket").validate(
        {
            "url": "https://b.s3.amazonaws.com/k?X-Amz-Signature=s",
            "method": "PUT",
            "headers": {"Content-Type": "text/plain"},
            "key": "u/prj-1/a.txt",
            "expiresAt": AT,
        }
    )
