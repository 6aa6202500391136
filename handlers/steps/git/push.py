"""The git-push step: push branches (and tags) of the project's workspace to its origin, never by force.

The branches default to the one HEAD is on. Each goes as ``refs/heads/<b>:refs/heads/<b>``, tags
with ``--tags``, all in one ``--atomic`` push (:func:`steps.git.remote.push`): the origin takes
every ref as a fast-forward or none of them, and a refusal ends the job ``PushRejected`` with the
refs and git's reasons (``fetch first`` when the origin moved: pull, then push again). The
workspace's files and branches are never changed; git updates its ``origin/*`` refs to what it
pushed, as ``git push`` does.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import git_input, locks
from core.observability import logger, tracer
from core.steps import job_step
from steps.git import remote
from steps.git.errors import BranchNotFound
from steps.git.repo import Repo, workspace_repo

SAFETY_MARGIN_SECONDS = 15  # left to report before the function's own timeout
MAX_LISTED = 100  # refs listed in the result; pushedCount counts them all


def _branches(git: Repo, params: dict[str, Any]) -> list[str]:
    """The branches to push, checked as refs and present in the workspace; HEAD's when none are named."""
    if params.get("branches"):
        names = [git_input.check_ref(b, f"params.branches[{i}]") for i, b in enumerate(params["branches"])]
    else:
        current = git.current_branch()
        if current is None:
            raise BranchNotFound("HEAD is detached: name the branches to push in params.branches")
        names = [git_input.check_ref(current, "params.branches")]
    missing = [b for b in dict.fromkeys(names) if git.commit_of(f"refs/heads/{b}") is None]
    if missing:
        raise BranchNotFound(f"no branch {', '.join(missing)} in the workspace")
    return list(dict.fromkeys(names))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step("push", summary=lambda r: {"pushed": len(r["pushed"]), "branches": r["branches"]})
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    params, project_id, job_id = event["params"], event["projectId"], event["jobId"]
    for i, branch in enumerate(params.get("branches") or []):
        git_input.check_ref(branch, f"params.branches[{i}]")
    locks.hold(project_id, job_id, "git-push")
    # The sanitized .git/config also keeps git from pushing more than asked (remote.origin.push and
    # push.* are dropped with the rest).
    with workspace_repo(project_id, context, margin=SAFETY_MARGIN_SECONDS) as git:
        branches = _branches(git, params)
        locks.check_held(project_id, job_id)
        refs = remote.push(
            git,
            event["userId"],
            params.get("credentials"),
            [f"refs/heads/{b}" for b in branches],
            tags=bool(params.get("tags")),
        )
    pushed = [r for r in refs if r["status"] != "up-to-date"]
    logger.info("pushed", extra={"refs": [p["ref"] for p in pushed][:100]})
    # The result is stored in the job record and sent over the WebSocket: keep it small.
    return {
        "pushed": pushed[:MAX_LISTED],
        "pushedCount": len(pushed),
        "upToDate": len(refs) - len(pushed),
        "branches": branches,
        "tags": bool(params.get("tags")),
    }
