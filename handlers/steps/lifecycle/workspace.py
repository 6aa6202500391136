"""Step 3 of delete-project, a loop: remove the project's workspace on EFS, a turn at a time.

The first turn renames the workspace (and any create-project staging directory of the project)
out of the way, to ``.deleting-<projectId>`` beside it: one atomic rename, after which no path of
the project's workspace exists for anything to write into. Then each turn removes files and
directories of that tree, deepest first, for ``turns.TURN_SECONDS``, and answers ``done: false``
until nothing is left: a tree of any size never holds one Lambda past its timeout, and a retried
or redriven turn goes on with what is left. Symbolic links are removed, never followed, so a link
in a user's repository cannot make the step delete anything outside the project.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import locks
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.lifecycle.errors import WorkspaceNotRemoved
from steps.lifecycle.turns import Turn
from steps.project.workspace import workspace_dir


def trash_dir(project_id: str) -> Path:
    """Where the workspace goes while it is removed: hidden, on the same file system (a rename)."""
    return Path(settings().efs_mount_path) / "projects" / f".deleting-{project_id}"


def _leftovers(project_id: str) -> list[Path]:
    """The project's workspace and the create-project staging directories it may have left."""
    root = Path(settings().efs_mount_path) / "projects"
    found = [workspace_dir(project_id)]
    if root.is_dir():
        found += sorted(root.glob(f".staging-{project_id}-*"))
    return [p for p in found if p.exists() or p.is_symlink()]


def _move_aside(project_id: str) -> None:
    """Rename what is left of the workspace into the trash (a fresh name if the trash is still there)."""
    trash = trash_dir(project_id)
    trash.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index, path in enumerate(_leftovers(project_id)):
        target = trash / f"{path.name}-{index}"
        while target.exists() or target.is_symlink():
            target = target.with_name(target.name + "_")
        path.rename(target)


def _unlink_or_rmdir(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink()


def _remove(path: Path) -> None:
    """Unlink a file or link, or remove an empty directory; a read-only parent is made writable first."""
    try:
        _unlink_or_rmdir(path)
    except PermissionError:
        os.chmod(path.parent, stat.S_IRWXU)
        _unlink_or_rmdir(path)


def remove_some(trash: Path, turn: Turn) -> tuple[int, bool]:
    """Remove files of ``trash``, deepest first, until the turn is over: (files removed, whether all is gone)."""
    removed = 0

    def refuse(error: OSError) -> None:
        raise error

    try:
        for dirpath, dirnames, filenames in os.walk(trash, topdown=False, onerror=refuse):
            here = Path(dirpath)
            for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
                if turn.over():
                    return removed, False
                _remove(here / name)
                removed += 1
            if turn.over():
                return removed, False
            here.chmod(stat.S_IRWXU)  # its entries are gone: only the directory itself is left
            _remove(here)
    except FileNotFoundError:
        if trash.exists():
            raise WorkspaceNotRemoved(f"part of {trash.name} vanished while it was removed; try again") from None
    except OSError as e:
        raise WorkspaceNotRemoved(f"the file system refused to remove {e.filename}: {e.strerror}") from None
    return removed, not trash.exists()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step(
    "remove-workspace",
    summary=lambda r: {"files": r["files"]},
    starts=lambda event: not event.get("workspace"),
    ends=lambda result: result["done"],
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id, job_id = event["projectId"], event["jobId"]
    state = {"files": 0, "turns": 0, **(event.get("workspace") or {})}
    locks.refresh(project_id, job_id)  # LockLost once cancelled
    turn = Turn()
    try:
        _move_aside(project_id)
    except OSError as e:
        raise WorkspaceNotRemoved(f"the workspace could not be moved aside: {e.strerror}") from None
    files, done = remove_some(trash_dir(project_id), turn)
    state["files"] += files
    state["turns"] += 1
    done = done and not _leftovers(project_id)
    logger.info("workspace removed" if done else "workspace partly removed", extra={**state})
    return {**state, "done": done}
