"""The create-project workflow's errors: every class its steps raise, by its Step Functions name.

Every work state of ``create_project.asl.json`` catches ``States.ALL``: whatever fails, a name that
was reserved is given back (UndoCreateProject) and the user is told (NotifyFailure), so nothing ends
the execution uncaught. The classes are still named here so that the job's ``error.code`` (the class
name) has one definition.
"""

from __future__ import annotations

from core.git_input import GitInputError
from steps.git.errors import (
    CredentialsNotFound,
    ForbiddenHost,
    GitFailed,
    GitTimedOut,
    HostNotFound,
    RepositoryTooLarge,
)

MACHINES = ("create_project",)


class NameTaken(Exception):
    """Another project of the same user already has this name (two jobs raced past the API's check)."""


class ScaffoldNotFound(Exception):
    """The requested template does not ship with this deployment."""


class WorkspaceExists(Exception):
    """The project's workspace directory exists and is not this job's repository."""


# GitFailed and GitTimedOut: InitRepository runs git through the git steps' runner (steps.project.git).
# CloneRepository (a project started from a repoUrl) is held to git-clone's rules and errors.
ERRORS: tuple[type[Exception], ...] = (
    NameTaken,
    ScaffoldNotFound,
    WorkspaceExists,
    GitFailed,
    GitTimedOut,
    GitInputError,
    ForbiddenHost,
    HostNotFound,
    CredentialsNotFound,
    RepositoryTooLarge,
)

ENDS_EXECUTION: dict[type[Exception], str] = {}
