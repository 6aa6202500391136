"""The git-clone step: clone a repository into the project's workspace, whole or not at all.

The clone is made in a staging directory on the same file system, then swapped in for the
workspace, so a clone that fails or runs out of time leaves the workspace as it was. git runs
through :mod:`steps.git.runner` (no hooks, only the allowed protocols, bounded); a host name is
resolved first and refused if it lands in a private range (``ForbiddenHost``); private
repositories take their credentials from SSM through ``GIT_ASKPASS``, never a URL or argument.

Every branch of the origin becomes a local branch tracking it (as ``git branch --track`` would
make it), so git-flow's ``develop`` and ``feature/*`` are there for git-merge and git-branch; a
shallow clone fetches every branch too (``--no-single-branch``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import config, git_input, locks
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import runner
from steps.git.credentials import askpass_for
from steps.git.errors import RepositoryTooLarge
from steps.git.hosts import check_resolved
from steps.git.repo import reported_progress
from steps.project.workspace import workspace_dir, workspace_name

SAFETY_MARGIN_SECONDS = 15  # left to clean up before the function's own timeout


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("clone", summary=lambda r: {"commit": r["commit"], "branch": r["branch"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, project_id, job_id = event["params"], event["projectId"], event["jobId"]
    allowed = config.git_private_hosts()
    url = git_input.check_repo_url(params["repoUrl"], allowed)
    ref = git_input.check_ref(params["ref"]) if params.get("ref") else None
    check_resolved(url, allowed)
    locks.hold(project_id, job_id, "git-clone")

    workspace = workspace_dir(project_id)
    staging = workspace.parent / f".clone-{project_id}-{job_id[:12]}"
    shutil.rmtree(staging, ignore_errors=True)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    report = reported_progress(event, "clone")

    options: list[str] = []
    if params.get("depth"):
        # --depth implies --single-branch; every branch is wanted here, each one shallow.
        options += ["--depth", str(int(params["depth"])), "--no-single-branch"]
    if ref:
        options += ["--branch", ref]
    with tempfile.TemporaryDirectory(prefix="longrun-git-") as home:
        clone_into(
            staging,
            url,
            options,
            event=event,
            home=Path(home),
            context=context,
            margin=SAFETY_MARGIN_SECONDS,
            on_progress=report,
            note="the workspace is unchanged",
        )
        commit = runner.run(["rev-parse", "HEAD"], staging, home=Path(home), timeout=30)
        branch = runner.run(["branch", "--show-current"], staging, home=Path(home), timeout=30) or None
        branches = track_remote_branches(staging, Path(home))

    try:
        locks.check_held(project_id, job_id)
    except locks.LockLost:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # A workspace is its project's alone (workers/build/sandbox.py). The staging directory is git's
    # own (git removes it if the clone dies), under an unguessable name in a directory no build lists.
    staging.chmod(0o700)
    previous = workspace.parent / f".replaced-{project_id}-{job_id[:12]}"
    if workspace.exists():
        workspace.rename(previous)
    staging.rename(workspace)
    shutil.rmtree(previous, ignore_errors=True)
    logger.info("cloned", extra={"host": url.host, "commit": commit})
    return {
        "commit": commit,
        "branch": branch,
        "branches": branches,
        "ref": ref,
        "workspace": workspace_name(project_id),
    }


def clone_into(
    staging: Path,
    url: git_input.RepoUrl,
    options: Sequence[str],
    *,
    event: dict[str, Any],
    home: Path,
    context: LambdaContext,
    margin: float,
    on_progress: Callable[[runner.Progress], None],
    note: str = "",
) -> None:
    """``git clone`` ``url`` (checked and resolved already) into ``staging``, which git makes; gone again if it fails.

    git-clone and create-project's clone-repository clone the same way, so that both keep git-clone's
    rules: credentials only from SSM through ``GIT_ASKPASS`` (the job's ``params.credentials``, of its
    ``userId``), HTTP only for a URL that is ``http``, no submodules, and a clone bounded by what is
    left of the Lambda's time less ``margin``. A clone that runs out of time is ``RepositoryTooLarge``
    (``note``, if any, ends its message); any failure removes ``staging``, so nothing half-cloned stays around.
    """
    askpass, secrets = (None, {})
    if event["params"].get("credentials"):
        askpass, secrets = askpass_for(event["userId"], event["params"]["credentials"], home)
    limit = context.get_remaining_time_in_millis() / 1000 - margin
    try:
        runner.run(
            ["clone", "--progress", "--no-recurse-submodules", *options, "--", url.url, str(staging)],
            staging.parent,
            home=home,
            timeout=limit,
            allow_http=url.scheme == "http",
            askpass=askpass,
            extra_env=secrets,
            on_progress=on_progress,
        )
    except runner.GitTimedOut:
        shutil.rmtree(staging, ignore_errors=True)
        message = f"the clone did not finish within {limit:.0f} s" + (f"; {note}" if note else "")
        raise RepositoryTooLarge(message) from None
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def track_remote_branches(repo: Path, home: Path) -> list[str]:
    """Make every ``refs/remotes/origin/*`` (but ``HEAD``) a local branch tracking it; the local branches, sorted.

    Plumbing only (``update-ref`` on a full ``refs/heads/…`` name, ``config`` of its upstream), so a
    branch name the origin chose never reaches git where it could be read as an option; a name
    :func:`core.git_input.check_ref` refuses stays remote-only.
    """

    def git(*args: str) -> str:
        return runner.run(list(args), repo, home=home, timeout=60)

    local = set(git("for-each-ref", "--format=%(refname:strip=2)", "refs/heads").split())
    for name in git("for-each-ref", "--format=%(refname:strip=3)", "refs/remotes/origin").split():
        if name == "HEAD" or name in local:
            continue
        try:
            git_input.check_ref(name)
        except git_input.GitInputError:
            logger.warning("left a remote branch with an unsafe name remote-only", extra={"branch": name[:255]})
            continue
        git("update-ref", f"refs/heads/{name}", f"refs/remotes/origin/{name}")
        git("config", f"branch.{name}.remote", "origin")
        git("config", f"branch.{name}.merge", f"refs/heads/{name}")
        local.add(name)
    return sorted(local)
