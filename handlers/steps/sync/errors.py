"""The sync workflow's errors: every class its steps raise, by its Step Functions name.

Every work state of ``sync.asl.json`` catches ``States.ALL`` (through SaveProgress, which records
what did copy), so nothing ends the execution uncaught. ``Collision`` and ``UnsafePath`` are raised by
the workspace's file I/O (:mod:`steps.sync.files`) and mostly become a batch's problems, reported
per file; ``PathError`` is the edge's own path check (:mod:`core.paths`), met again here.
"""

from __future__ import annotations

from core.paths import PathError

MACHINES = ("sync",)


class ObjectArchived(Exception):
    """The object is in an archive storage class (Glacier): it must be restored before it can be copied."""


class Collision(Exception):
    """The key cannot be written: a parent component is a regular file, or the target is a directory."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class UnsafePath(Exception):
    """A component is a symlink or something else (FIFO, socket, device) that is never followed."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class ProjectGone(Exception):
    """The project was deleted (or is being deleted) while the sync waited its turn: there is nothing to sync."""


ERRORS: tuple[type[Exception], ...] = (ObjectArchived, Collision, UnsafePath, PathError, ProjectGone)

ENDS_EXECUTION: dict[type[Exception], str] = {}
