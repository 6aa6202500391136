"""git in one workspace, through the hardened runner: the small wrapper the git steps share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from steps.git import runner


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

    def current_branch(self) -> str | None:
        """The branch HEAD is on, None when it is detached."""
        try:
            return self("symbolic-ref", "--quiet", "--short", "HEAD") or None
        except runner.GitFailed:
            return None
