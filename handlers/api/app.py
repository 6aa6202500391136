"""The REST API of longrun: start jobs, read them, cancel them, read projects.

Every call answers at once: a job's work runs in its Step Functions execution, never here.
The user is the authorizer's ``principalId``; another user's job or project is ``404``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from api import cursor, idempotency
from core import aws, config, git_input, holdings, jobs, launcher, locks, paths, projects, publisher, schemas
from core.config import state_machine_arn
from core.errors import (
    ApiError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ProjectBusy,
    ServiceUnavailable,
    Throttled,
    ValidationError,
)

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()

MAX_BODY_BYTES = 256 * 1024
_THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
GIT_JOB_TYPES = locks.GIT_JOB_TYPES
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]+")


# --- helpers ------------------------------------------------------------------------------------


def _user() -> str:
    authorizer = app.current_event.request_context.authorizer
    user = authorizer.get("userId") or authorizer.get("principalId")
    if not user:  # only reachable if the API is deployed without its authorizer
        raise ApiError("the request reached the API without an authorized user")
    return user


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def _body() -> dict[str, Any]:
    raw = app.current_event.decoded_body or ""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body is over {MAX_BODY_BYTES // 1024} KiB")
    if not raw.strip():
        raise ValidationError("the request body must be a JSON object", [{"path": "(body)", "message": "missing"}])
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ValidationError(
            "the request body nests too deeply", [{"path": "(body)", "message": "nested too deeply"}]
        ) from None
    except ValueError as e:
        raise ValidationError(
            f"the request body is not valid JSON: {e}", [{"path": "(body)", "message": str(e)}]
        ) from None
    if not isinstance(body, dict):
        raise ValidationError(
            "the request body must be a JSON object", [{"path": "(body)", "message": "not an object"}]
        )
    return body


def _header(name: str) -> str | None:
    for key, value in (app.current_event.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _path_id(value: str) -> str:
    """Ids in paths are checked for shape; one of the wrong shape cannot exist, hence 404."""
    if not _ID.match(value):
        raise NotFound("no such job or project")
    return value


def _owned_job(job_id: str) -> dict[str, Any]:
    job = jobs.get_owned(_path_id(job_id), _user())
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _accepted(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "jobId": job["jobId"],
        "type": job["type"],
        "projectId": job.get("projectId"),
        "status": job["status"],
        "executionArn": job["executionArn"],
        "createdAt": job["createdAt"],
        "links": jobs.links(job["jobId"], job["executionArn"]),
    }


# --- validation ---------------------------------------------------------------------------------


def _validate(body: dict[str, Any], user_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """The job's type, project and params, or a ValidationError listing every problem."""
    problems = schemas.violations("job-request.json", body)
    job_type = body.get("type")
    params = body.get("params", {})
    known = schemas.job_types()
    if isinstance(job_type, str) and job_type not in known:
        problems.append({"path": "type", "message": f"unknown job type; one of {', '.join(known)}"})
    elif isinstance(job_type, str) and isinstance(params, dict):
        problems += schemas.violations(f"jobs/{job_type}.json", params, ["params"])
    if job_type == "create-project" and "projectId" in body:
        problems.append({"path": "projectId", "message": "create-project makes its own project"})
    elif isinstance(job_type, str) and job_type in known and job_type != "create-project" and "projectId" not in body:
        problems.append({"path": "projectId", "message": "is required"})
    if not problems and job_type in GIT_JOB_TYPES:
        problems += _git_problems(params)
    if not problems and job_type == "sync" and "prefix" in params:
        try:
            params = {**params, "prefix": _sync_prefix(params["prefix"])}
        except paths.PathError as e:
            problems.append({"path": "params.prefix", "message": e.message})
    if problems:
        raise ValidationError("the job request is not valid", sorted(problems, key=lambda p: p["path"]))
    project_id = body.get("projectId")
    if project_id is not None and projects.get_owned(project_id, user_id) is None:
        raise NotFound(f"project {project_id} not found")
    return job_type, project_id, params


def _git_problems(params: dict[str, Any]) -> list[dict[str, str]]:
    """git's hostile forms, refused before any git process exists (see core.git_input)."""
    problems = []
    for field, value in params.items():
        try:
            if field == "repoUrl":
                git_input.check_repo_url(value, config.git_private_hosts())
            elif field in ("ref", "source", "target"):
                git_input.check_ref(value, f"params.{field}")
            elif field == "name":  # becomes feature/<name>, release/<name>, a tag
                git_input.check_ref(f"feature/{value}", "params.name")
        except git_input.GitInputError as e:
            problems.append({"path": e.path, "message": e.message})
    return problems


def _sync_prefix(value: str) -> str:
    """A sync's ``prefix``: a checked relative directory, ending in ``/`` (``src`` and ``src/`` alike)."""
    return paths.check_relative_path(value.rstrip("/") if value.endswith("/") else value, "params.prefix") + "/"


def _with_defaults(job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults the schema declares, so the workflow sees what the user meant."""
    declared = schemas.load(f"jobs/{job_type}.json").get("properties", {})
    filled = dict(params)
    for name, spec in declared.items():
        if name not in filled and "default" in spec:
            filled[name] = spec["default"]
    return filled


# --- routes -------------------------------------------------------------------------------------


@app.post("/jobs")
def start_job() -> Response:
    user_id = _user()
    body = _body()
    job_type, project_id, params = _validate(body, user_id)
    params = _with_defaults(job_type, params)
    machine = state_machine_arn(job_type)
    if machine is None:
        raise ValidationError(
            "this deployment does not run that job type", [{"path": "type", "message": "not deployed"}]
        )

    job_id = uuid.uuid4().hex
    # The key is claimed first: a repeat of a request that already made its job gets that job,
    # even though the job has since taken the project name the repeat asks for.
    key = _header("Idempotency-Key")
    claimed = idempotency.claim(user_id, key, body, job_id) if key is not None else None
    if claimed and claimed.job_id:
        existing = jobs.get(claimed.job_id, consistent=True)
        return _json(202, _accepted(existing), {"Location": f"/jobs/{existing['jobId']}"})
    try:
        job = _start(job_id, user_id, job_type, project_id, params, machine)
    except Exception:
        if claimed:
            idempotency.release(claimed)
        raise
    if claimed:
        idempotency.complete(claimed)
    metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)
    logger.info("job started", extra={"jobId": job_id, "executionArn": job["executionArn"], "type": job_type})
    return _json(202, _accepted(job), {"Location": f"/jobs/{job_id}"})


def _start(
    job_id: str, user_id: str, job_type: str, project_id: str | None, params: dict[str, Any], machine: str
) -> dict[str, Any]:
    """Write the job, then start its execution; a job whose start fails is closed ``FAILED``."""
    if job_type == "create-project":
        project_id = "prj-" + uuid.uuid4().hex[:16]
    job = launcher.new_job(job_id, user_id, job_type, project_id, params, machine)
    if job_type == "create-project":
        # One write: the job, only while the name is free (the workflow's ReserveName settles a race).
        if not jobs.put_new_unless(job, projects.name_key(user_id, params["name"])):
            raise Conflict(f"you already have a project named {params['name']!r}")
    else:
        if job_type in GIT_JOB_TYPES and project_id:
            holder = locks.acquire(project_id, job_id, job_type)
            if holder is not None:
                raise ProjectBusy(
                    f"project {project_id} is busy with git job {holder}",
                    [{"path": "projectId", "message": "another git job runs on this project", "jobId": holder}],
                )
        try:
            jobs.put_new(job)
        except Exception:
            if job_type in GIT_JOB_TYPES and project_id:
                locks.release(project_id, job_id)
            raise
    try:
        launcher.start_execution(job, machine)
    except Exception:
        if job_type in GIT_JOB_TYPES and project_id:
            locks.release(project_id, job_id)
        raise
    return job


@app.get("/jobs")
def list_jobs() -> Response:
    user_id = _user()
    query = app.current_event.query_string_parameters or {}
    problems = []
    status = query.get("status")
    if status is not None and status not in jobs.STATUSES:
        problems.append({"path": "query.status", "message": f"one of {', '.join(sorted(jobs.STATUSES))}"})
    project_id = query.get("projectId")
    if project_id is not None and not _ID.match(project_id):
        problems.append({"path": "query.projectId", "message": "not a project id"})
    limit_text = query.get("limit", "20")
    limit = int(limit_text) if _DIGITS.fullmatch(limit_text) and len(limit_text) <= 3 else 0
    if not 1 <= limit <= 100:
        problems.append({"path": "query.limit", "message": "an integer from 1 to 100"})
    if problems:
        raise ValidationError("the query is not valid", problems)
    start = cursor.decode(query["cursor"], user_id=user_id, project_id=project_id) if query.get("cursor") else None
    items, last = jobs.query_page(user_id=user_id, project_id=project_id, status=status, limit=limit, start_key=start)
    return _json(200, {"items": [jobs.view(j) for j in items], "nextCursor": cursor.encode(last) if last else None})


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return _json(200, jobs.view(_owned_job(job_id)))


@app.get("/jobs/<job_id>/events")
def get_events(job_id: str) -> Response:
    job = _owned_job(job_id)
    after_text = (app.current_event.query_string_parameters or {}).get("after", "0")
    if not _DIGITS.fullmatch(after_text) or len(after_text) > 15:
        raise ValidationError(
            "after must be a non-negative integer", [{"path": "query.after", "message": "not an integer >= 0"}]
        )
    return _json(200, {"items": publisher.events_after(job["jobId"], int(after_text))})


@app.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> Response:
    job = _owned_job(job_id)
    if job["status"] in jobs.FINAL_STATUSES:
        raise Conflict(f"job {job_id} already finished with status {job['status']}")
    try:
        aws.client("stepfunctions").stop_execution(
            executionArn=job["executionArn"], error="Cancelled", cause="cancelled by the user"
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "ExecutionDoesNotExist":
            raise
    publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "cancelled by the user"})
    # The project is free for the next job now; a step still running finds the lock gone before it
    # changes the workspace for good (git) or copies its next batch (sync).
    holdings.give_back(job)
    return _json(202, jobs.view(jobs.get(job["jobId"], consistent=True)))


@app.get("/projects/<project_id>")
def get_project(project_id: str) -> Response:
    project = projects.get_owned(_path_id(project_id), _user())
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return _json(200, projects.view(project))


@app.post("/projects/<project_id>/uploads")
def create_upload(project_id: str) -> Response:
    """A pre-signed S3 PUT URL for one file of the project: the file goes to S3 directly, never through Lambda.

    The key is the project's prefix plus the checked, NFC-normalised path. ``contentType`` and
    ``size`` are signed into the URL (S3 refuses a request whose headers differ), so ``size``
    bounds the upload; the URL lapses after ``UPLOAD_URL_SECONDS``. The upload itself starts a
    sync of the project (see ``triggers.uploads``).
    """
    user_id = _user()
    project_id = _path_id(project_id)
    body = _body()
    problems = schemas.violations("upload-request.json", body)
    path = None
    if not any(p["path"] == "path" for p in problems):
        try:
            path = paths.check_relative_path(body.get("path"))
        except paths.PathError as e:
            problems.append({"path": "path", "message": e.message})
    limit = config.upload_max_bytes()
    if isinstance(body.get("size"), int) and body["size"] > limit:
        problems.append({"path": "size", "message": f"at most {limit} bytes"})
    if problems:
        raise ValidationError("the upload request is not valid", problems)
    if projects.get_owned(project_id, user_id) is None:
        raise NotFound(f"project {project_id} not found")
    key = f"projects/{project_id}/{path}"
    params: dict[str, Any] = {"Bucket": config.settings().projects_bucket, "Key": key}
    headers: dict[str, str] = {}
    if body.get("contentType"):
        params["ContentType"] = headers["Content-Type"] = body["contentType"]
    if "size" in body:
        params["ContentLength"] = body["size"]
        headers["Content-Length"] = str(body["size"])
    seconds = config.upload_url_seconds()
    url = aws.presigning_client("s3").generate_presigned_url("put_object", Params=params, ExpiresIn=seconds)
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    return _json(
        200,
        {
            "url": url,
            "method": "PUT",
            "headers": headers,
            "key": key,
            "path": path,
            "expiresAt": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
        },
    )


# --- errors -------------------------------------------------------------------------------------


@app.exception_handler(ApiError)
def api_error(e: ApiError) -> Response:
    headers = dict(e.headers)
    if isinstance(e, Throttled):
        headers.setdefault("Retry-After", "1")
    return _json(e.status, e.body(), headers)


@app.exception_handler(ClientError)
def aws_error(e: ClientError) -> Response:
    code = e.response.get("Error", {}).get("Code", "")
    if code in _THROTTLING_CODES:
        return api_error(Throttled("too many requests; try again shortly"))
    logger.exception("AWS call failed", extra={"code": code})
    return api_error(ServiceUnavailable("a service longrun depends on failed; try again"))


@app.not_found
def not_found(_: Exception) -> Response:
    return api_error(NotFound("no such resource"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
