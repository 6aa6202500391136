"""Step 3 of create-project: make the project's git repository on the EFS workspace.

The scaffold is read back from S3 (the project's source of truth), committed on ``main``, and
``develop`` is branched from it, as git-flow expects. The repository is built in a staging
directory on the same file system and renamed into place, so a workspace appears whole or not at
all, and a retry of the step starts clean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.project import git
from steps.project.errors import WorkspaceExists
from steps.project.workspace import s3_prefix, staging_dir, workspace_dir, workspace_name

DEFAULT_BRANCH = "main"


def _download(project_id: str, into: Path) -> int:
    s3 = aws.project_client(project_id, "s3")  # this project's prefix only (core.scoped)
    prefix = s3_prefix(project_id)
    root = into.resolve()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings().projects_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            target = (root / relative).resolve()
            if not relative or relative.endswith("/") or not target.is_relative_to(root) or target == root:
                logger.warning("skipping a key that is not a file path", extra={"key": obj["Key"]})
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            body = s3.get_object(Bucket=settings().projects_bucket, Key=obj["Key"])["Body"]
            with open(target, "wb") as f:
                for chunk in body.iter_chunks(1024 * 1024):
                    f.write(chunk)
            # The object's time, as a sync would set it: a later sync finds the file unchanged.
            modified = obj["LastModified"].timestamp()
            os.utime(target, (modified, modified))
            count += 1
    return count


def _result(project_id: str, repo: Path) -> dict[str, Any]:
    return {
        "workspace": workspace_name(project_id),
        "defaultBranch": DEFAULT_BRANCH,
        "commit": git.run(["rev-parse", "HEAD"], repo),
        "branches": git.run(["for-each-ref", "--format=%(refname:short)", "refs/heads"], repo).split(),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("init-repository", summary=lambda r: {"commit": r["commit"], "branches": r["branches"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id, job_id = event["projectId"], event["jobId"]
    final = workspace_dir(project_id)
    marker = f"longrun-job-{job_id}"
    if final.exists():
        # A retry after the rename: it is ours if the first commit carries this job's marker.
        if (final / ".git").is_dir() and marker in git.run(["log", "--format=%B", "-1", DEFAULT_BRANCH], final):
            return _result(project_id, final)
        raise WorkspaceExists(f"the workspace of project {project_id} already exists")

    staging = staging_dir(project_id, job_id)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staging.chmod(0o700)  # a workspace is its project's alone (see workers/build/sandbox.py)
    files = _download(project_id, staging)
    git.run(["init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", "."], staging)
    git.run(["add", "--all"], staging)
    template = event["params"].get("template", "web-app")
    git.run(
        ["commit", "--quiet", "--allow-empty", "-m", f"Create project from the {template} template\n\n{marker}"],
        staging,
    )
    git.run(["branch", "develop"], staging)
    staging.rename(final)
    logger.info("repository created", extra={"files": files, "workspace": str(final)})
    return _result(project_id, final)
