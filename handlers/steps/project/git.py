"""git for the create-project steps: the hardened runner of the git steps (steps.git.runner)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from steps.git.runner import GitFailed
from steps.git.runner import run as _run

__all__ = ["GitFailed", "run"]

# Lambda's home is read-only; git gets a private one under /tmp.
_HOME = Path(tempfile.gettempdir()) / "longrun-git-home"


def run(args: list[str], cwd: Path, timeout: float = 60) -> str:
    _HOME.mkdir(exist_ok=True)
    return _run(args, cwd, home=_HOME, timeout=timeout)
