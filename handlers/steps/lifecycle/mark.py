"""Step 1 of delete-project: hold the project and mark it ``deleting``, so no new job starts on it.

The API took the project's lock when it started the job (409 ``ProjectBusy`` while another job
held it); the step takes it again (a no-op for the holder), as the git steps do, so that an
execution started some other way is held to the same rule. From the mark on, ``POST /jobs``, an
upload URL and the upload trigger refuse the project (core.projects.refuse_if_deleting), and it
stays marked until its records are gone: a delete that fails midway never leaves it half usable.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, locks, projects
from core.clock import now_iso
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.lifecycle.errors import ProjectNotFound


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("mark-deleting", summary=lambda r: {"name": r["name"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id, job_id = event["projectId"], event["jobId"]
    locks.hold(project_id, job_id, "delete-project")  # ProjectBusy if another job holds it
    # The record with credentials that reach this project's items only (core.scoped).
    table = aws.project_table(project_id, settings().projects_table)
    try:
        item = table.update_item(
            Key=projects.project_key(project_id),
            UpdateExpression="SET #status = :deleting, deletingJobId = :job, "
            "deletingSince = if_not_exists(deletingSince, :now)",
            ConditionExpression="attribute_exists(pk) AND userId = :user",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":deleting": projects.DELETING,
                ":job": job_id,
                ":now": now_iso(),
                ":user": event["userId"],
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ProjectNotFound(f"project {project_id} does not exist") from None
        raise
    return {"name": str(item["name"])}
