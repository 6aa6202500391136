"""The delete-project workflow's errors: every class its steps raise, by its Step Functions name.

``ProjectNotFound`` is the job's answer (caught, told by NotifyFailure). A delete that S3 or the
file system refused is not: it ends the execution at the failing state on purpose
(:data:`ENDS_EXECUTION`), the project stays ``deleting`` (no job starts on it), and
``POST /jobs/{id}/retry`` redrives the execution from that state, which goes on where it stopped.
Shared errors (``TransientError``, ``ProjectBusy``, ``LockLost``) are in :mod:`core.workflow_errors`.
"""

from __future__ import annotations

MACHINES = ("delete_project",)


class ProjectNotFound(Exception):
    """The project's record is gone, or is another user's: there is nothing of the job's user to delete."""


class ObjectsNotDeleted(Exception):
    """S3 refused to delete some of the project's object versions (DeleteObjects answered ``Errors``)."""


class WorkspaceNotRemoved(Exception):
    """The file system refused to remove part of the project's workspace."""


ERRORS: tuple[type[Exception], ...] = (ProjectNotFound, ObjectsNotDeleted, WorkspaceNotRemoved)

ENDS_EXECUTION: dict[type[Exception], str] = {
    ObjectsNotDeleted: "S3 refused part of a page: the job fails at DeleteObjects; a retry deletes what is left",
    WorkspaceNotRemoved: "the file system refused: the job fails at RemoveWorkspace; a retry removes what is left",
}
