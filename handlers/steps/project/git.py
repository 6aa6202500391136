"""Running the ``git`` binary for a step: no prompts, no user or system config, no shell."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

AUTHOR = ("longrun", "longrun@users.noreply.longrun.dev")


class GitFailed(Exception):
    """git exited non-zero; the message carries its stderr."""


def run(args: list[str], cwd: Path, timeout: float = 60) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/tmp",  # Lambda's home is read-only
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": AUTHOR[0],
        "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_NAME": AUTHOR[0],
        "GIT_COMMITTER_EMAIL": AUTHOR[1],
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise GitFailed(f"git {args[0]} failed: {done.stderr.strip()[:2000]}")
    return done.stdout.strip()
