"""Step 4 of create-project: record the project, so ``GET /projects/{projectId}`` finds it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, projects
from core.clock import now_iso
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project.workspace import s3_prefix


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("record-project", summary=lambda r: {"projectId": r["projectId"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, repository = event["params"], event["repository"]
    # From a template (WriteScaffold filled the prefix) or from a repository (the clone is the workspace).
    origin = (
        {"repoUrl": params["repoUrl"]} if params.get("repoUrl") else {"template": params.get("template", "web-app")}
    )
    project = {
        "projectId": event["projectId"],
        "userId": event["userId"],
        "name": params["name"],
        **origin,
        "s3Prefix": s3_prefix(event["projectId"]),
        "workspace": repository["workspace"],
        "defaultBranch": repository["defaultBranch"],
        "createdAt": now_iso(),
        "jobId": event["jobId"],
    }
    # The project's own record: written with credentials that reach this project's items only.
    table = aws.project_table(event["projectId"], settings().projects_table)
    # projectCreatedAt: the project's place in its user's list (the byUser index, core.projects).
    item = {**projects.project_key(event["projectId"]), **project, projects.LISTED_AT: project["createdAt"]}
    table.put_item(Item=item)
    return {k: project[k] for k in ("projectId", "s3Prefix", "workspace", "defaultBranch")}
