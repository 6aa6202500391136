"""The git-merge step: merge branches of the project's workspace, all or nothing.

Strategies: ``merge`` (always a merge commit), ``ff-only`` and ``squash`` (the source's changes as
one commit on the target). git-flow finishes, as the git-flow tools do them:

* ``feature-finish`` *name*: ``feature/<name>`` into ``develop``, then delete the feature branch;
* ``release-finish`` / ``hotfix-finish`` *name*: ``release/<name>`` (``hotfix/<name>``) into
  ``main``, tag ``<name>`` there, merge ``main`` back into ``develop``, delete the branch.

Before anything it records where every branch it may move points; on a conflict (or any failure)
it aborts the merge and puts every branch, tag and the working tree back, then fails with
``MergeConflict`` and the conflicting paths.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import git_input, locks
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import flow, remote, runner
from steps.git.errors import BranchNotFound, MergeConflict, NotFastForward, WorkspaceNotClean
from steps.git.repo import Repo, workspace_repo


def _merge(git: Repo, source: str, target: str, strategy: str, message: str) -> None:
    git("checkout", "--quiet", target, "--")
    try:
        if strategy == "ff-only":
            git("merge", "--ff-only", "--quiet", "--", source)
        elif strategy == "squash":
            git("merge", "--squash", "--quiet", "--", source)
            git("commit", "--quiet", "--allow-empty", "-m", message)
        else:
            git("merge", "--no-ff", "--quiet", "-m", message, "--", source)
    except runner.GitFailed as e:
        conflicted = git.conflicted()
        if conflicted:
            raise MergeConflict(
                f"merging {source} into {target} conflicts in {len(conflicted)} path(s)",
                [{"path": path, "message": "conflict"} for path in conflicted],
            ) from None
        if strategy == "ff-only" and "Not possible to fast-forward" in str(e):
            raise NotFastForward(f"{target} cannot be fast-forwarded to {source}") from None
        raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("merge", summary=lambda r: {"commit": r["commit"], "target": r["target"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params = event["params"]
    if params.get("flow"):
        kind = flow.kind_of(params["flow"])  # the branch names and bases git-branch's starts use too
        source, target, tags, name = kind.branch(params["name"]), kind.finishes_into, kind.tags, params["name"]
        plan = [(source, target, "merge")] + ([(target, flow.DEVELOP, "merge")] if tags else [])
    else:
        source, target, name, tags = params["source"], params["target"], None, False
        plan = [(source, target, params.get("strategy", "merge"))]
    for ref in {source, target, *(t for _, t, _ in plan)}:
        git_input.check_ref(ref)
    locks.hold(event["projectId"], event["jobId"], "git-merge")

    with workspace_repo(event["projectId"], context) as git:
        if git("status", "--porcelain", "--untracked-files=no"):
            raise WorkspaceNotClean("the workspace has uncommitted changes")
        branches = {b for pair in plan for b in pair[:2]}
        before = {b: git.head_of(b) for b in branches}
        missing = sorted(b for b, head in before.items() if head is None)
        if missing:
            raise BranchNotFound(f"no branch {', '.join(missing)} in the workspace")
        original = git("symbolic-ref", "--quiet", "--short", "HEAD")
        try:
            for step_source, step_target, strategy in plan:
                _merge(git, step_source, step_target, strategy, f"Merge {step_source} into {step_target}")
                if tags and step_target == target:
                    git("tag", "-a", "-m", f"{kind.prefix.capitalize()} {name}", "--", name)
            if params.get("flow"):
                git("branch", "--delete", "--force", "--", source)
            locks.check_held(event["projectId"], event["jobId"])
        except Exception:
            _restore(git, before, original, name if tags else None)
            raise
        commit = git("rev-parse", f"refs/heads/{target}")
        if params.get("push"):
            _push(git, event, [target, *([flow.DEVELOP] if tags else [])], name if tags else None)
        # Back to the branch HEAD was on; a finish that deleted it ends on develop, as git-flow's does.
        # --no-guess: never a new branch made from origin/<deleted branch>.
        back = plan[-1][1] if params.get("flow") and original == source else original
        git("checkout", "--quiet", "--no-guess", back, "--")
    logger.info("merged", extra={"target": target, "commit": commit})
    return {"commit": commit, "target": target, "tag": name if tags else None}


def _restore(git: Repo, before: dict[str, str | None], original: str, tag: str | None) -> None:
    """Put the workspace back as it was: no merge in progress, every branch where it pointed."""
    for undo in (("merge", "--abort"), ("reset", "--quiet", "--merge")):
        with contextlib.suppress(runner.GitFailed):
            git(*undo)
    for branch, head in before.items():  # first: the branch HEAD was on may be one a finish deleted
        if head:
            git("update-ref", f"refs/heads/{branch}", head)
    git("checkout", "--quiet", "--force", "--no-guess", original, "--")
    git("reset", "--quiet", "--hard", "HEAD")
    if tag:
        with contextlib.suppress(runner.GitFailed):
            git("tag", "--delete", "--", tag)


def _push(git: Repo, event: dict[str, Any], branches: list[str], tag: str | None) -> None:
    """Push the merged branches (and the tag) as git-push does (:func:`steps.git.remote.push`): never by force."""
    refs = [f"refs/heads/{b}" for b in branches] + ([f"refs/tags/{tag}"] if tag else [])
    remote.push(git, event["userId"], event["params"].get("credentials"), refs)
