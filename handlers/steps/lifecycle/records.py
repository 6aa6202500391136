"""Step 4 of delete-project: remove the project's records and give its name back; the job's result.

What goes, in an order a retry can repeat: the name reservation ``name#<userId>#<name>`` (only while
it still names this project: the user's, with the function's own role, as create-project made
it), the waiting uploads ``syncreq#<projectId>``, the sync manifest ``manifests/<projectId>.json``,
the record ``project#<projectId>`` (from here on ``GET /projects/{id}`` is 404 and the name may be
used again), and last the lock, as the project (core.scoped). The project's jobs are not touched:
they are the user's history (``GET /jobs/{jobId}``, ``GET /jobs?projectId=`` keep answering).
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, locks, projects
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step


def _delete_if(table: Any, key: dict[str, str], condition: str, values: dict[str, str]) -> bool:
    """Delete ``key`` if ``condition`` holds; False if it did not (already gone, or not this job's)."""
    try:
        table.delete_item(Key=key, ConditionExpression=condition, ExpressionAttributeValues=values)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("remove-records", summary=lambda r: r["deleted"])
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id, job_id, user_id = event["projectId"], event["jobId"], event["userId"]
    name = event["project"]["name"]
    locks.check_held(project_id, job_id)  # LockLost once cancelled: the project stays deleting, whole
    released = _delete_if(
        aws.table(settings().projects_table),
        projects.name_key(user_id, name),
        "projectId = :project",
        {":project": project_id},
    )
    table = aws.project_table(project_id, settings().projects_table)
    table.delete_item(Key={"pk": f"syncreq#{project_id}"})
    s3 = aws.project_client(project_id, "s3")
    with contextlib.suppress(ClientError):  # a manifest is a cache of the last sync: its loss costs a full listing
        s3.delete_object(Bucket=settings().projects_bucket, Key=f"manifests/{project_id}.json")
    table.delete_item(Key=projects.project_key(project_id))
    _delete_if(table, {"pk": f"lock#{project_id}"}, "jobId = :job", {":job": job_id})
    logger.info("project records removed", extra={"nameReleased": released})
    return {
        "deleted": {
            "objects": int(event["objects"]["objects"]),
            "files": int(event["workspace"]["files"]),
        }
    }
