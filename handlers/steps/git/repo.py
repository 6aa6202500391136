"""git in one workspace, through the hardened runner: the small wrapper the git steps share."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import publisher
from core.observability import logger
from steps.git import runner
from steps.project.workspace import workspace_dir

SAFETY_MARGIN_SECONDS = 15  # left before the function's own timeout, to clean up or put the workspace back


class GitIn(Protocol):
    """What :mod:`steps.git.remote` needs of a step's git: run a command in the repository, and its private HOME."""

    home: Path

    def __call__(self, *args: str, **kwargs: Any) -> str: ...


class Repo:
    """``repo("status", "--porcelain")`` runs git in ``path`` with a private HOME and the step's time limit."""

    def __init__(self, path: Path, home: Path, timeout: float) -> None:
        self.path, self.home, self.timeout = path, home, timeout

    def __call__(self, *args: str, **kwargs: Any) -> str:
        return runner.run(list(args), self.path, home=self.home, timeout=self.timeout, **kwargs)

    def commit_of(self, ref: str) -> str | None:
        """The commit ``ref`` (a full ref name or an object id) names, or None."""
        try:
            return self("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}") or None
        except runner.GitFailed:
            return None

    def head_of(self, branch: str) -> str | None:
        """What ``refs/heads/<branch>`` holds, not peeled, or None: the value to put back when undoing a change."""
        try:
            return self("rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}") or None
        except runner.GitFailed:
            return None

    def current_branch(self) -> str | None:
        """The branch HEAD is on, None when it is detached."""
        try:
            return self("symbolic-ref", "--quiet", "--short", "HEAD") or None
        except runner.GitFailed:
            return None

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True if ``older`` is ``newer`` or one of its ancestors: whether a fast-forward would do."""
        try:
            self("merge-base", "--is-ancestor", older, newer)
            return True
        except runner.GitFailed:
            return False

    def conflicted(self) -> list[str]:
        """The paths a failed merge or rebase left unmerged: what a ``MergeConflict`` reports."""
        return self("diff", "--name-only", "--diff-filter=U").splitlines()


@contextlib.contextmanager
def workspace_repo(project_id: str, context: LambdaContext, margin: float = SAFETY_MARGIN_SECONDS) -> Iterator[Repo]:
    """The project's workspace as a :class:`Repo`, its ``.git/config`` sanitized, with a private HOME for the block.

    Builds write the workspace: nothing in its ``.git`` may make git run a command or look elsewhere,
    so the unsafe keys are dropped (and logged) before any git runs there. The HOME is a fresh
    temporary directory (no user's or build's git config takes part; askpass scripts go there),
    removed when the block ends. git may run until ``margin`` seconds before the function's timeout.
    """
    path = workspace_dir(project_id)
    dropped = runner.sanitize_config(path)
    if dropped:
        logger.warning("dropped unsafe keys from the workspace's .git/config", extra={"keys": dropped[:50]})
    with tempfile.TemporaryDirectory(prefix="longrun-git-") as home:
        yield Repo(path, Path(home), context.get_remaining_time_in_millis() / 1000 - margin)


def reported_progress(event: dict[str, Any], step: str) -> Callable[[runner.Progress], None]:
    """git's progress as the step's ``job.progress`` detail (phase, percent), at most twice a second.

    git prints a line per percent of every phase; the user needs to see it move, not every line.
    """
    throttle = runner.Throttle(per_second=2)

    def report(progress: runner.Progress) -> None:
        if throttle.admit(progress):
            publisher.step_detail(event, step, {"phase": progress.phase, "percent": progress.percent})

    return report
