"""The git workflows' errors (git-clone, -merge, -pull, -branch, -push): every class their steps raise, by name.

The machines ``Catch`` the errors that are the job's answer (a forbidden host, a conflict...) and
tell them through NotifyFailure. ``GitFailed`` and ``GitTimedOut`` are left uncaught on purpose
(:data:`ENDS_EXECUTION`). Shared errors (``TransientError``, ``ProjectBusy``, ``LockLost``) are in
:mod:`core.workflow_errors`; ``GitInputError`` is the edge's own check (:mod:`core.git_input`), run
again by the steps.
"""

from __future__ import annotations

from core.git_input import GitInputError
from core.workflow_errors import StepErrorWithDetails

MACHINES = ("git_clone", "git_merge", "git_pull", "git_branch", "git_push")


class GitFailed(Exception):
    """git exited non-zero; the message carries the end of its stderr, ``stdout`` what it printed (push --porcelain)."""

    def __init__(self, message: str, stdout: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout


class GitTimedOut(Exception):
    """git ran past its time limit and was stopped."""


class CredentialsNotFound(Exception):
    """No stored secret of that name for this user."""


class ForbiddenHost(Exception):
    """The repository's host resolves to a private, loopback or link-local address."""


class HostNotFound(Exception):
    """The repository's host name does not resolve."""


class RepositoryTooLarge(Exception):
    """The clone could not finish within the function's time."""


class MergeConflict(StepErrorWithDetails):
    """The merge stopped on conflicting changes; ``details`` lists the paths."""


class NotFastForward(Exception):
    """``ff-only`` was asked and the target has commits the source lacks."""


class BranchNotFound(Exception):
    """A branch the merge needs does not exist in the workspace."""


class WorkspaceNotClean(Exception):
    """The workspace has uncommitted changes; a merge would mix them in."""


class BranchExists(Exception):
    """git-branch: the branch to create exists already (git-flow's start refuses it too)."""


class PushRejected(StepErrorWithDetails):
    """The origin refused a ref (not a fast-forward, a tag that exists, a hook); ``details`` lists the refs."""


class NoOrigin(Exception):
    """The workspace has no ``origin`` remote to pull from (a project made from a template, never cloned)."""


ERRORS: tuple[type[Exception], ...] = (
    GitInputError,
    GitFailed,
    GitTimedOut,
    CredentialsNotFound,
    ForbiddenHost,
    HostNotFound,
    RepositoryTooLarge,
    MergeConflict,
    NotFastForward,
    BranchNotFound,
    WorkspaceNotClean,
    BranchExists,
    PushRejected,
    NoOrigin,
)

ENDS_EXECUTION: dict[type[Exception], str] = {
    GitFailed: "git failing (a server down, a network cut, a refused password) may pass: the job ends FAILED "
    "with git's message and POST /jobs/{id}/retry redrives the step",
    GitTimedOut: "a git command past its limit in a merge (a clone's becomes RepositoryTooLarge): as GitFailed",
}
