"""The compensation of create-project: undo what the steps did before one of them failed.

It releases the name (only this job's reservation), deletes the project record, the S3 prefix
and the workspace or staging directory. Each part is safe to run again and on what was never
made, so the state machine can retry this step freely.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, projects
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project import clone_repository, git
from steps.project.workspace import s3_prefix, staging_dir, workspace_dir


def _release_name(event: dict[str, Any]) -> bool:
    try:
        aws.table(settings().projects_table).delete_item(
            Key=projects.name_key(event["userId"], event["params"]["name"]),
            ConditionExpression="jobId = :job",
            ExpressionAttributeValues={":job": event["jobId"]},
        )
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False  # not ours (or already released)
        raise


def _delete_prefix(project_id: str) -> int:
    """Delete every version under the project's prefix: the bucket is versioned, and a plain delete only hides."""
    s3 = aws.project_client(project_id, "s3")  # this project's prefix only (core.scoped)
    prefix = s3_prefix(project_id)
    bucket = settings().projects_bucket
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        versions = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if versions:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": versions, "Quiet": True})
            deleted += sum(1 for v in page.get("Versions", []))
    return deleted


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("undo", summary=lambda r: r)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id = event["projectId"]
    released = _release_name(event)
    # The project's record and files with its scoped credentials; the name (the user's) with the function's.
    table = aws.project_table(project_id, settings().projects_table)
    record = table.get_item(Key=projects.project_key(project_id)).get("Item")
    if record and record.get("jobId") == event["jobId"]:
        table.delete_item(Key=projects.project_key(project_id))
    deleted = _delete_prefix(project_id)
    shutil.rmtree(staging_dir(project_id, event["jobId"]), ignore_errors=True)
    workspace = workspace_dir(project_id)
    removed = False
    if _made_by(workspace, event["jobId"]):
        shutil.rmtree(workspace, ignore_errors=True)
        removed = True
    return {"nameReleased": released, "objectsDeleted": deleted, "workspaceRemoved": removed}


def _made_by(workspace: Path, job_id: str) -> bool:
    """Only a repository this job made is its to remove: its first commit, or a clone's marker, names the job."""
    if not (workspace / ".git").is_dir():
        return False
    if clone_repository.made_by(workspace, job_id):
        return True
    try:
        return f"longrun-job-{job_id}" in git.run(["log", "--format=%B", "--max-parents=0", "HEAD"], workspace)
    except git.GitFailed:
        return False
