"""Step 2 of create-project: write the template's files under the project's S3 prefix."""

from __future__ import annotations

import mimetypes
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, sync_requests
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project import scaffold
from steps.project.workspace import s3_prefix


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("write-scaffold", summary=lambda r: {"files": r["files"], "s3Prefix": r["s3Prefix"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params = event["params"]
    prefix = s3_prefix(event["projectId"])
    s3 = aws.project_client(event["projectId"], "s3")  # this project's prefix only (core.scoped)
    count = 0
    for path, content in scaffold.files(params.get("template", "web-app"), params["name"]):
        s3.put_object(
            Bucket=settings().projects_bucket,
            Key=prefix + path,
            Body=content,
            ContentType=mimetypes.guess_type(path)[0] or "application/octet-stream",
            Metadata={sync_requests.WRITER_METADATA: event["jobId"]},  # the workspace gets these by itself
        )
        count += 1
    return {"s3Prefix": prefix, "files": count}
