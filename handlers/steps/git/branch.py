"""The git-branch step: create a branch in the project's workspace and check it out.

Two shapes (``schemas/jobs/git-branch.json``): ``name`` with an optional ``from`` (a branch, a tag,
a remote-tracking branch such as ``origin/x``, or a commit id; default HEAD), or a git-flow start
by ``flow`` and ``name`` on the rules of :mod:`steps.git.flow` (``feature/<name>`` and
``release/<name>`` from ``develop``, ``hotfix/<name>`` from ``main``).

The new branch is checked out, as ``git checkout -b`` and ``git flow <kind> start`` do: an IDE's
next edits land on it. Uncommitted changes go along with HEAD, as git carries them; if they would
be overwritten by the base's files, git refuses, nothing is created and the job ends
``WorkspaceNotClean``. A branch that exists already is ``BranchExists`` (never moved or reset), a
base that does not is ``BranchNotFound``. The branch does not track anything yet: git-push
creates it on the origin.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import git_input, locks
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import flow, runner
from steps.git.errors import BranchExists, BranchNotFound, WorkspaceNotClean
from steps.git.repo import Repo, workspace_repo

SAFETY_MARGIN_SECONDS = 15
_COMMIT_ID = re.compile(r"^[0-9a-f]{7,64}$")


def plan(params: dict[str, Any]) -> tuple[str, str | None, bool]:
    """The branch to create, its base (None: HEAD) and whether the base must be a local branch (a git-flow start)."""
    if params.get("flow"):
        kind = flow.kind_of(params["flow"])
        git_input.check_ref(params["name"], "params.name")
        return git_input.check_ref(kind.branch(params["name"]), "params.name"), kind.starts_from, True
    base = git_input.check_ref(params["from"], "params.from") if params.get("from") is not None else None
    return git_input.check_ref(params["name"], "params.name"), base, False


def _resolve_base(git: Repo, base: str | None, branch_only: bool) -> str:
    """The commit the branch starts at; ``BranchNotFound`` if ``base`` names nothing in the workspace."""
    if base is None:
        head = git.commit_of("HEAD")
        if head is None:
            raise BranchNotFound("the workspace has no commit yet to branch from")
        return head
    candidates = [f"refs/heads/{base}"]
    if not branch_only:
        candidates += [f"refs/tags/{base}", f"refs/remotes/{base}"] + ([base] if _COMMIT_ID.match(base) else [])
    for ref in candidates:
        commit = git.commit_of(ref)
        if commit:
            return commit
    if branch_only:
        raise BranchNotFound(f"no branch {base} in the workspace: git-flow starts this branch from {base}")
    raise BranchNotFound(f"no branch, tag or commit {base} in the workspace")


def _refuse_existing(git: Repo, branch: str) -> None:
    """``BranchExists`` for the branch itself, and for a ref that shares its path (``feature`` vs ``feature/x``)."""
    existing = set(git("for-each-ref", "--format=%(refname:strip=2)", "refs/heads").splitlines())
    if branch in existing:
        raise BranchExists(f"a branch {branch} exists already")
    parts = branch.split("/")
    clash = [p for p in ("/".join(parts[:i]) for i in range(1, len(parts))) if p in existing]
    clash += sorted(e for e in existing if e.startswith(branch + "/"))
    if clash:
        raise BranchExists(f"branch {clash[0]} exists, so {branch} cannot be created (git keeps them as one path)")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("branch", summary=lambda r: {"branch": r["branch"], "commit": r["commit"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, project_id, job_id = event["params"], event["projectId"], event["jobId"]
    branch, base, branch_only = plan(params)
    locks.hold(project_id, job_id, "git-branch")
    with workspace_repo(project_id, context, margin=SAFETY_MARGIN_SECONDS) as git:
        try:  # git's own rule as well as ours (core.git_input), on the full ref name
            git("check-ref-format", f"refs/heads/{branch}")
        except runner.GitFailed:
            raise git_input.GitInputError("params.name", f"git refuses {branch!r} as a branch name") from None
        _refuse_existing(git, branch)
        commit = _resolve_base(git, base, branch_only)
        locks.check_held(project_id, job_id)
        try:
            git("checkout", "--quiet", "--no-track", "-b", branch, commit)
        except runner.GitFailed as e:
            # git switches the files first and makes the branch only once they are switched.
            if "would be overwritten" in str(e) or git("status", "--porcelain"):
                raise WorkspaceNotClean(
                    f"uncommitted changes in the workspace would be overwritten by {base or 'HEAD'}'s files: "
                    "commit or discard them first"
                ) from None
            raise
    logger.info("branched", extra={"branch": branch, "commit": commit})
    return {"branch": branch, "commit": commit, "from": base or "HEAD", "checkedOut": True}
