"""The REST API of longrun: start jobs, read them, cancel them, read projects.

Every call answers at once: a job's work runs in its Step Functions execution, never here.
The user is the authorizer's ``principalId``; another user's job or project is ``404``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from api import cursor, mapping
from core import (
    aws,
    config,
    downloads,
    holdings,
    jobs,
    paths,
    presign,
    projects,
    publisher,
    retries,
    schemas,
    submission,
)
from core.errors import (
    ApiError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Throttled,
    ValidationError,
)
from core.observability import append_job_keys, logger, tracer

app = APIGatewayRestResolver()

MAX_BODY_BYTES = 256 * 1024
_THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


def _location(job_id: str) -> str:
    """The job's ``Location``: its path as this client reaches it (stage or base path in front, api.mapping)."""
    return mapping.public_path(app.current_event.raw_event, f"/jobs/{job_id}")


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
    append_job_keys(job)
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


# --- routes -------------------------------------------------------------------------------------


@app.post("/jobs")
def start_job() -> Response:
    job = submission.submit(_user(), _body(), _header("Idempotency-Key"))
    append_job_keys(job)  # JobsStarted is counted where every start passes (core.launcher)
    logger.info("job started", extra={"type": job["type"]})
    return _json(202, _accepted(job), {"Location": _location(job["jobId"])})


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
    # The project is free for the next job now, before job.finished is pushed (a client told may
    # start its next job at once); a step still running finds the lock gone before it changes the
    # workspace for good (git) or copies its next batch (sync).
    holdings.give_back(job)
    publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "cancelled by the user"})
    return _json(202, jobs.view(jobs.get(job["jobId"], consistent=True)))


@app.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> Response:
    """Redrive a failed job's execution from the state that failed (see ``core.retries``)."""
    job = retries.retry(_owned_job(job_id))
    logger.info("job retried", extra={"jobId": job["jobId"], "attempt": job.get("attempt")})
    return _json(202, jobs.view(job), {"Location": _location(job["jobId"])})


@app.get("/projects")
def list_projects() -> Response:
    """The caller's projects, newest first, paged like ``GET /jobs`` (a cursor is the caller's own)."""
    user_id = _user()
    query = app.current_event.query_string_parameters or {}
    limit_text = query.get("limit", "20")
    limit = int(limit_text) if _DIGITS.fullmatch(limit_text) and len(limit_text) <= 3 else 0
    if not 1 <= limit <= 100:
        problem = {"path": "query.limit", "message": "an integer from 1 to 100"}
        raise ValidationError("the query is not valid", [problem])
    start = cursor.decode_projects(query["cursor"], user_id=user_id) if query.get("cursor") else None
    items, last = projects.query_page(user_id=user_id, limit=limit, start_key=start)
    return _json(200, {"items": [projects.view(p) for p in items], "nextCursor": cursor.encode(last) if last else None})


@app.delete("/projects/<project_id>")
def delete_project(project_id: str) -> Response:
    """Start the project's ``delete-project`` job: the same job ``POST /jobs`` starts, answered the same way."""
    body = {"type": "delete-project", "projectId": _path_id(project_id), "params": {}}
    job = submission.submit(_user(), body, _header("Idempotency-Key"))
    append_job_keys(job)
    logger.info("project deletion started", extra={"type": job["type"]})
    return _json(202, _accepted(job), {"Location": _location(job["jobId"])})


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
    bounds the upload; the URL lapses after ``UPLOAD_URL_SECONDS`` (or sooner, with its signing
    credentials: ``expiresAt`` says when). The upload itself starts a
    sync of the project (see ``triggers.uploads``).
    """
    user_id = _user()
    project_id = _path_id(project_id)
    body = _body()
    problems = schemas.violations("upload-request.json", body)
    path = paths.checked_path(body, problems)
    limit = config.upload_max_bytes()
    if isinstance(body.get("size"), int) and body["size"] > limit:
        problems.append({"path": "size", "message": f"at most {limit} bytes"})
    if problems:
        raise ValidationError("the upload request is not valid", problems)
    project = projects.get_owned(project_id, user_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    projects.refuse_if_deleting(project)  # 409 ProjectBusy: no file goes into a project being deleted
    key = f"projects/{project_id}/{path}"
    params: dict[str, Any] = {"Bucket": config.settings().projects_bucket, "Key": key}
    headers: dict[str, str] = {}
    if body.get("contentType"):
        params["ContentType"] = headers["Content-Type"] = body["contentType"]
    if "size" in body:
        params["ContentLength"] = body["size"]
        headers["Content-Length"] = str(body["size"])
    # Signed as the project (core.presign): the URL reaches its objects only, and expiresAt is never
    # later than the signing credentials' end, when S3 stops honouring the URL.
    signed = presign.project_url(project_id, "put_object", params, config.upload_url_seconds())
    return _json(
        200,
        {
            "url": signed.url,
            "method": "PUT",
            "headers": headers,
            "key": key,
            "path": path,
            "expiresAt": signed.expires_at_text,
        },
    )


@app.post("/projects/<project_id>/downloads")
def create_download(project_id: str) -> Response:
    """A pre-signed S3 GET URL for one file of the project, as S3 holds it (see ``core.downloads``).

    The path is checked as an upload's; a file S3 does not hold is ``404``, as is another user's
    project. ``size``, ``lastModified`` and ``etag`` describe the object found: what the last upload
    or ``efs-to-s3`` sync wrote, not the live workspace.
    """
    user_id = _user()
    project_id = _path_id(project_id)
    path, problems = downloads.checked_request(_body())
    if problems or path is None:
        raise ValidationError("the download request is not valid", problems)
    project = projects.get_owned(project_id, user_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    projects.refuse_if_deleting(project)  # 409 ProjectBusy: its files are going, page by page
    ticket = downloads.ticket(project_id, path)
    if ticket is None:
        raise NotFound(
            f"project {project_id} has no file {path} in S3 (files reach S3 by an upload or an efs-to-s3 sync)"
        )
    return _json(200, ticket)


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
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    append_job_keys(
        userId=authorizer.get("userId") or authorizer.get("principalId"),
        jobId=(event.get("pathParameters") or {}).get("jobId"),
    )
    # Behind a custom domain's mapping the path starts with its base path (api.mapping).
    return app.resolve(mapping.routed(event), context)
