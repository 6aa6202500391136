"""Submitting a job: the checks and the start that ``POST /jobs`` and a ``Start Job`` event share.

A job request is ``{"type", "projectId"?, "params"}`` made by a user. Whether it came over the
REST API or from another system's EventBridge event, it is validated against ``schemas/`` the
same way, refused with the same error codes, and started the same way: the job record first,
then its execution. Errors are :class:`core.errors.ApiError` s; the caller turns them into an
HTTP answer (the API) or a dead letter with its reason (the EventBridge trigger).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from core import config, git_input, idempotency, jobs, launcher, locks, paths, projects, quota, schemas
from core.config import state_machine_arn
from core.errors import Conflict, NotFound, ProjectBusy, ValidationError

GIT_JOB_TYPES = locks.GIT_JOB_TYPES
API_LOCKED_JOB_TYPES = locks.API_LOCKED_JOB_TYPES


def validate(body: dict[str, Any], user_id: str) -> tuple[str, str | None, dict[str, Any]]:
    """The job's type, project and params, or a ValidationError listing every problem.

    A project that is not the user's is ``NotFound``, as an unknown one is.
    """
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
    if not problems and job_type == "create-project":
        problems += _starting_point_problems(params)
    if not problems and job_type == "sync" and "prefix" in params:
        try:
            params = {**params, "prefix": _sync_prefix(params["prefix"])}
        except paths.PathError as e:
            problems.append({"path": "params.prefix", "message": e.message})
    if problems:
        raise ValidationError("the job request is not valid", sorted(problems, key=lambda p: p["path"]))
    project_id = body.get("projectId")
    if project_id is not None:
        project = projects.get_owned(project_id, user_id)
        if project is None:
            raise NotFound(f"project {project_id} not found")
        projects.refuse_if_deleting(project, job_type)  # 409: only another delete starts on it
    return job_type, project_id, params


def _git_problems(params: dict[str, Any]) -> list[dict[str, str]]:
    """git's hostile forms, refused before any git process exists (see core.git_input)."""
    problems = []
    for field, value in params.items():
        try:
            if field == "repoUrl":
                git_input.check_repo_url(value, config.git_private_hosts())
            elif field in ("ref", "source", "target", "branch", "from"):
                git_input.check_ref(value, f"params.{field}")
            elif field == "branches":  # git-push
                for i, branch in enumerate(value):
                    git_input.check_ref(branch, f"params.branches[{i}]")
            elif field == "name":  # a branch itself (git-branch), or feature/<name>, release/<name>, a tag
                git_input.check_ref(value, "params.name")
                git_input.check_ref(f"feature/{value}", "params.name")
        except git_input.GitInputError as e:
            problems.append({"path": e.path, "message": e.message})
    return problems


def _starting_point_problems(params: dict[str, Any]) -> list[dict[str, str]]:
    """A project starts from a template or from a repository (``repoUrl``), never both; a URL is git's hostile input."""
    if "repoUrl" not in params:
        if "credentials" in params:
            return [{"path": "params.credentials", "message": "is for cloning repoUrl: give repoUrl too"}]
        return []
    if "template" in params:
        return [{"path": "params.template", "message": "a project starts from a template or from repoUrl, not both"}]
    return _git_problems({"repoUrl": params["repoUrl"]})


def _sync_prefix(value: str) -> str:
    """A sync's ``prefix``: a checked relative directory, ending in ``/`` (``src`` and ``src/`` alike)."""
    return paths.check_relative_path(value.rstrip("/") if value.endswith("/") else value, "params.prefix") + "/"


def with_defaults(job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults the schema declares, so the workflow sees what the user meant."""
    declared = schemas.load(f"jobs/{job_type}.json").get("properties", {})
    filled = dict(params)
    for name, spec in declared.items():
        if name not in filled and "default" in spec:
            filled[name] = spec["default"]
    return filled


def submit(
    user_id: str,
    body: dict[str, Any],
    idempotency_key: str | None = None,
    key_path: str = "headers.Idempotency-Key",
) -> dict[str, Any]:
    """Validate ``body`` and start its job for ``user_id``; the job as first written.

    With an idempotency key, a repeat of a request that already made its job gets that job back
    (even though the job has since taken the project name the repeat asks for), and the same key
    with another body is ``Conflict``. A user with ``MaxConcurrentJobsPerUser`` jobs running is
    ``Throttled`` (:mod:`core.quota`); a repeat is not a new job and is never refused for it.
    """
    job_type, project_id, params = validate(body, user_id)
    params = with_defaults(job_type, params)
    if job_type == "create-project" and "repoUrl" in params:
        params.pop("template")  # the schema's default is for a project made from a template
    machine = state_machine_arn(job_type)
    if machine is None:
        raise ValidationError(
            "this deployment does not run that job type", [{"path": "type", "message": "not deployed"}]
        )
    job_id = uuid.uuid4().hex
    claimed = (
        idempotency.claim(user_id, idempotency_key, body, job_id, key_path) if idempotency_key is not None else None
    )
    if claimed and claimed.job_id:  # a repeat: its job took its place in the quota already
        return jobs.get(claimed.job_id, consistent=True)
    try:
        quota.take(user_id, job_id)  # 429 Throttled at MaxConcurrentJobsPerUser, before anything is written
        try:
            job = _start(job_id, user_id, job_type, project_id, params, machine)
        except Exception:
            # A start that failed gives its place back (publisher.finish did already if the job was
            # written and closed StartFailed; a second give-back is a no-op).
            with contextlib.suppress(Exception):  # the quota heals what this misses; keep the start's error
                quota.give_back(user_id, job_id)
            raise
    except Exception:
        if claimed:
            idempotency.release(claimed)
        raise
    if claimed:
        idempotency.complete(claimed)
    return job


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
        if job_type in API_LOCKED_JOB_TYPES and project_id:
            holder = locks.acquire(project_id, job_id, job_type)
            if holder is not None:
                raise ProjectBusy(
                    f"project {project_id} is busy with job {holder}",
                    [{"path": "projectId", "message": "another job holds this project", "jobId": holder}],
                )
        try:
            jobs.put_new(job)
        except Exception:
            if job_type in API_LOCKED_JOB_TYPES and project_id:
                locks.release(project_id, job_id)
            raise
    try:
        launcher.start_execution(job, machine)
    except Exception:
        if job_type in API_LOCKED_JOB_TYPES and project_id:
            locks.release(project_id, job_id)
        raise
    return job
