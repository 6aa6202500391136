"""The git-pull step: fetch the workspace's origin and bring one branch up to date, all or nothing.

Strategies: ``ff-only`` (the branch must be an ancestor of ``origin/<branch>``), ``merge`` (a
fast-forward when it can, a merge commit when the histories diverged) and ``rebase`` (the branch's
own commits replayed on the origin's). The origin is the workspace's ``origin`` remote, held to
git-clone's rules: its URL is checked again (a build may have rewritten ``.git/config``), its host
must not resolve into a private range unless the deployment allows it, credentials come from SSM
through ``GIT_ASKPASS``, and git runs through :mod:`steps.git.runner`.

Before it changes anything the step records HEAD and where the branch points; a conflict, a refusal
or any failure aborts the merge or rebase and puts HEAD, the branch, the index and the files back
(``NotFastForward``, ``MergeConflict`` with the paths). The fetch is the one thing kept: the
remote-tracking ``origin/*`` refs show what the origin holds, as ``git pull`` leaves them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import git_input, locks
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import runner
from steps.git.credentials import askpass_for
from steps.git.errors import BranchNotFound, MergeConflict, NotFastForward, WorkspaceNotClean
from steps.git.errors import NoOrigin as NoOrigin  # what origin() raises, named pull.NoOrigin as before
from steps.git.origin import origin
from steps.git.repo import Repo, reported_progress, workspace_repo

# Fetched into the remote-tracking refs whatever the workspace's remote.origin.fetch says (the fetch
# names the URL, so git reads no remote's refspec): a build could have pointed that refspec at
# refs/heads/* and had the fetch move local branches.
REFSPEC = "+refs/heads/*:refs/remotes/origin/*"
SAFETY_MARGIN_SECONDS = 15  # left to put the workspace back before the function's own timeout


def _target(git: Repo, params: dict[str, Any]) -> tuple[str, str | None]:
    """The branch to update, and the branch HEAD is on (None when detached)."""
    current = git.current_branch()
    branch = params.get("branch") or current
    if not branch:
        raise BranchNotFound("HEAD is detached: name the branch to pull in params.branch")
    return git_input.check_ref(branch, "params.branch"), current


def _integrate(git: Repo, branch: str, current: str | None, strategy: str, local: str, theirs: str) -> None:
    """Move ``branch`` to include ``theirs`` by ``strategy``; raises before or after a half-done change."""
    upstream = f"refs/remotes/origin/{branch}"
    if strategy == "ff-only" or git.is_ancestor(local, theirs):
        if not git.is_ancestor(local, theirs):
            raise NotFastForward(f"{branch} has commits origin/{branch} lacks: it cannot be fast-forwarded")
        if branch == current:
            git("merge", "--ff-only", "--quiet", "--", upstream)
        else:  # not checked out: only its ref moves, from the commit it was seen at
            git("update-ref", f"refs/heads/{branch}", theirs, local)
        return
    git("checkout", "--quiet", branch, "--")
    try:
        if strategy == "merge":
            git("merge", "--no-edit", "--quiet", "-m", f"Merge origin/{branch} into {branch}", "--", upstream)
        else:
            git("rebase", "--quiet", upstream)
    except runner.GitFailed:
        conflicted = git.conflicted()
        if conflicted:
            raise MergeConflict(
                f"pulling origin/{branch} into {branch} ({strategy}) conflicts in {len(conflicted)} path(s)",
                [{"path": path, "message": "conflict"} for path in conflicted],
            ) from None
        raise


def _restore(git: Repo, branch: str, local: str, current: str | None, head: str) -> None:
    """Put the workspace back as it was: no merge or rebase in progress, the branch and HEAD where they were."""
    for undo in (("rebase", "--abort"), ("merge", "--abort")):
        with contextlib.suppress(runner.GitFailed):
            git(*undo)
    git("update-ref", f"refs/heads/{branch}", local)
    if current:
        git("checkout", "--quiet", "--force", current, "--")
    else:
        git("checkout", "--quiet", "--force", "--detach", head)
    git("reset", "--quiet", "--hard", head)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("pull", summary=lambda r: {"commit": r["commit"], "branch": r["branch"], "updated": r["updated"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, project_id, job_id = event["params"], event["projectId"], event["jobId"]
    strategy = params.get("strategy", "ff-only")
    if params.get("branch"):
        git_input.check_ref(params["branch"], "params.branch")
    locks.hold(project_id, job_id, "git-pull")
    report = reported_progress(event, "pull")

    with workspace_repo(project_id, context, margin=SAFETY_MARGIN_SECONDS) as git:
        url = origin(git)
        branch, current = _target(git, params)
        if git("status", "--porcelain", "--untracked-files=no"):
            raise WorkspaceNotClean("the workspace has uncommitted changes")
        local = git.commit_of(f"refs/heads/{branch}")
        if local is None:
            raise BranchNotFound(f"no branch {branch} in the workspace")
        head = git("rev-parse", "HEAD")
        askpass, secrets = None, {}
        if params.get("credentials"):
            askpass, secrets = askpass_for(event["userId"], params["credentials"], git.home)
        # By its checked URL, not the remote's name: then no remote.origin.* setting takes part.
        git("fetch", "--progress", "--no-recurse-submodules", "--prune", "--", url.url, REFSPEC,
            allow_http=url.scheme == "http", askpass=askpass, extra_env=secrets, on_progress=report)  # fmt: skip
        theirs = git.commit_of(f"refs/remotes/origin/{branch}")
        if theirs is None:
            raise BranchNotFound(f"the origin has no branch {branch}")
        if not git.is_ancestor(theirs, local):  # else up to date already (or only ahead)
            try:
                _integrate(git, branch, current, strategy, local, theirs)
                if current != branch:  # a merge or rebase checked the branch out: back to where HEAD was
                    git("checkout", "--quiet", *((current, "--") if current else ("--detach", head)))
                locks.check_held(project_id, job_id)
            except Exception:
                _restore(git, branch, local, current, head)
                raise
        commit = git("rev-parse", f"refs/heads/{branch}")
    logger.info("pulled", extra={"branch": branch, "commit": commit, "updated": commit != local})
    return {"commit": commit, "branch": branch, "updated": commit != local, "strategy": strategy}
