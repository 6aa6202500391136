"""Step 1 of create-project: reserve the project's name among the user's projects.

The API refuses a taken name with 409; two jobs that race past that check meet here, where a
conditional write lets exactly one of them through and the other fails with ``NameTaken``.
A retry of the same job finds its own reservation and goes on.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from core import aws, projects
from core.clock import now_iso
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project.errors import NameTaken


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("reserve-name", summary=lambda r: {"name": r["name"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    name = event["params"]["name"]
    try:
        aws.table(settings().projects_table).put_item(
            Item={
                **projects.name_key(event["userId"], name),
                "userId": event["userId"],
                "projectId": event["projectId"],
                "jobId": event["jobId"],
                "reservedAt": now_iso(),
            },
            ConditionExpression="attribute_not_exists(pk) OR jobId = :job",
            ExpressionAttributeValues={":job": event["jobId"]},
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise NameTaken(f"you already have a project named {name!r}") from None
        raise
    return {"name": name}
