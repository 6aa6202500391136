"""The one step of project-stats: count the files and bytes under the project's S3 prefix.

It lists with a session limited to the job's project (``core.aws.project_client``, see
``core.scoped``), so a bug that named another project's prefix would be refused by IAM, not only
by this code. ``job_step`` reports ``STARTED`` and ``SUCCEEDED`` (with the counts) or ``FAILED``
to the user, and turns a throttled S3 call into ``TransientError`` for the state machine's Retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project.workspace import s3_prefix
from steps.stats.errors import TooManyFiles


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("count-files", summary=lambda r: {"files": r["files"], "bytes": r["bytes"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id = event["projectId"]
    max_files = event["params"]["maxFiles"]  # the API filled the schema's default in
    prefix = s3_prefix(project_id)
    s3 = aws.project_client(project_id, "s3")
    files = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings().projects_bucket, Prefix=prefix):
        for listed in page.get("Contents", []):
            files += 1
            size += listed["Size"]
            if files > max_files:
                raise TooManyFiles(f"project {project_id} has more than {max_files} files")
    return {"files": files, "bytes": size, "s3Prefix": prefix}
