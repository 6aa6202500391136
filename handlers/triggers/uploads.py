"""The upload trigger: S3 "Object Created" events (EventBridge → SQS → this function) start syncs.

Each event names one object under ``projects/<projectId>/``. Its path is checked like any user
input; the job belongs to the project's owner, read from the project itself (the event says
nothing trustworthy about who uploaded). The first upload of a burst starts a ``sync`` job; the
others join it while it has not started (:mod:`core.sync_requests`), so a burst makes one job.
A record that fails is reported back to SQS on its own (partial batch response) and retried,
then kept in the dead-letter queue: nothing is lost.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, jobs, launcher, paths, projects, sync_requests
from core.config import settings, state_machine_arn
from core.observability import append_job_keys, logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)

SYNC_PARAMS = {"direction": "s3-to-efs", "delete": False}


def _start_sync(job_id: str, user_id: str, project_id: str) -> None:
    machine = state_machine_arn("sync")
    if machine is None:
        raise RuntimeError("STATE_MACHINE_ARN_PREFIX is not set")
    job = launcher.new_job(job_id, user_id, "sync", project_id, dict(SYNC_PARAMS), machine)
    append_job_keys(job)
    try:
        jobs.put_new(job)
        launcher.start_execution(job, machine, {"origin": "upload"})
    except Exception:
        sync_requests.forget(project_id, job_id)  # the retried message opens a new request
        raise
    logger.info("sync started by upload", extra={"jobId": job_id, "projectId": project_id})


_projects_seen: dict[str, dict[str, Any] | None] = {}


def _project(project_id: str) -> dict[str, Any] | None:
    """The project, read once per batch (a burst's records mostly name the same one)."""
    if project_id not in _projects_seen:
        _projects_seen[project_id] = projects.get(project_id)
    return _projects_seen[project_id]


def _written_by_longrun(key: str) -> bool:
    """A scaffold or an efs-to-s3 sync wrote it (its metadata says so), or it is gone already."""
    try:
        head = aws.client("s3").head_object(Bucket=settings().projects_bucket, Key=key)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return True  # deleted since: nothing to sync
        raise
    return sync_requests.WRITER_METADATA in head.get("Metadata", {})


def record_handler(record: SQSRecord) -> None:
    append_job_keys()  # nothing of the batch's previous record
    event = json.loads(record.body)
    key = str(event.get("detail", {}).get("object", {}).get("key", ""))
    project_id = key.removeprefix("projects/").partition("/")[0]
    if not key.startswith("projects/") or not project_id:
        logger.warning("object outside every project; ignored", extra={"key": key[:200]})
        return
    path = paths.relative_key(key, f"projects/{project_id}/")
    if path is None:
        logger.warning("uploaded key is not a safe path; ignored", extra={"key": key[:200]})
        return
    if _written_by_longrun(key):
        logger.debug("object written by longrun itself; no sync", extra={"key": key[:200]})
        return
    project = _project(project_id)
    if project is None:
        logger.warning("upload to a project that does not exist; ignored", extra={"projectId": project_id[:64]})
        return
    if projects.is_deleting(project):  # a URL issued before the delete, used during it: no sync of a project going away
        logger.warning("upload to a project being deleted; ignored", extra={"projectId": project_id[:64]})
        return
    joined = sync_requests.join(project_id, project["userId"], path, uuid.uuid4().hex)
    append_job_keys(jobId=joined.job_id, userId=project["userId"])
    if joined.started_here:
        _start_sync(joined.job_id, project["userId"], project_id)
    else:
        logger.debug("upload joined a waiting sync", extra={"jobId": joined.job_id})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _projects_seen.clear()
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
