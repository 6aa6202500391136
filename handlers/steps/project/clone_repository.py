"""create-project from a repository (``repoUrl``): clone it as the project's workspace, in place of a scaffold.

The same rules as git-clone: the URL checked again (:mod:`core.git_input`), its host resolved and
refused in a private range unless the deployment allows it, credentials from SSM through
``GIT_ASKPASS``, git through the hardened :mod:`steps.git.runner`, every origin branch made local.
The clone is made in the project's staging directory and renamed into place, so a workspace appears
whole or not at all; ``.git/longrun-job`` names the job that made it, so that the compensation
(steps.project.undo) and a retry of this step know the workspace is theirs. Nothing is written to S3:
the project's prefix fills with the first efs-to-s3 sync.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import config, git_input
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import runner
from steps.git.clone import clone_into, track_remote_branches
from steps.git.hosts import check_resolved
from steps.git.repo import reported_progress
from steps.project.errors import WorkspaceExists
from steps.project.workspace import staging_dir, workspace_dir, workspace_name

SAFETY_MARGIN_SECONDS = 15  # left to clean up before the function's own timeout
MARKER = "longrun-job"  # in .git/: the id of the create-project job whose clone this is


def made_by(repo: Path, job_id: str) -> bool:
    """True if ``repo`` is the clone this job made (its marker names the job)."""
    marker = repo / ".git" / MARKER
    return marker.is_file() and not marker.is_symlink() and marker.read_text().strip() == job_id


def _result(project_id: str, repo: Path, home: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return runner.run(list(args), repo, home=home, timeout=30)

    try:  # the origin's default branch, as the clone recorded it
        default = git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD").removeprefix("origin/")
    except runner.GitFailed:  # an empty origin, or one whose HEAD names no branch
        default = git("branch", "--show-current")
    branches = git("for-each-ref", "--format=%(refname:strip=2)", "refs/heads").split()
    commit = git("rev-parse", "--verify", "--quiet", "HEAD") if branches else None
    return {
        "workspace": workspace_name(project_id),
        "defaultBranch": default or None,
        "commit": commit,
        "branches": sorted(branches),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("clone-repository", summary=lambda r: {"commit": r["commit"], "branches": r["branches"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, project_id, job_id = event["params"], event["projectId"], event["jobId"]
    allowed = config.git_private_hosts()
    url = git_input.check_repo_url(params["repoUrl"], allowed)
    final = workspace_dir(project_id)
    with tempfile.TemporaryDirectory(prefix="longrun-git-") as home:
        if final.exists():
            if made_by(final, job_id):  # a retry after the rename
                return _result(project_id, final, Path(home))
            raise WorkspaceExists(f"the workspace of project {project_id} already exists")
        check_resolved(url, allowed)
        staging = staging_dir(project_id, job_id)
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        report = reported_progress(event, "clone-repository")

        clone_into(
            staging,
            url,
            [],
            event=event,
            home=Path(home),
            context=context,
            margin=SAFETY_MARGIN_SECONDS,
            on_progress=report,
        )
        track_remote_branches(staging, Path(home))
        (staging / ".git" / MARKER).write_text(job_id + "\n")
        staging.chmod(0o700)  # a workspace is its project's alone (see workers/build/sandbox.py)
        staging.rename(final)
        result = _result(project_id, final, Path(home))
    logger.info("repository cloned", extra={"host": url.host, "commit": result["commit"]})
    return result
