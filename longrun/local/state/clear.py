"""What ``--fresh`` and ``longrun local reset`` remove from a data dir: everything the cloud keeps there.

The records (``state``) and the files they describe (``efs``) go together, or a restored project
would point at a workspace that is gone, or a workspace would outlive its project. The lock file
stays: it is how a running cloud is told apart, and it holds no data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from longrun.local.state.format import STATE_DIR

# What the cloud keeps under its data dir, each cleared by --fresh and reset.
CLEARED = (
    (STATE_DIR, "the saved tables, objects, queues, parameters, logs and executions"),
    ("efs", "the EFS files (project workspaces)"),
    ("logs", "the local processes' logs"),
    ("home", "the functions' HOME"),
    ("endpoints.json", "the endpoints file"),
)


def clear(data_dir: Path) -> list[Path]:
    """Remove what :data:`CLEARED` names under ``data_dir``; returns what existed and was removed."""
    removed = []
    for name, _ in CLEARED:
        path = data_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


def describe() -> str:
    return "; ".join(f"{name} ({what})" for name, what in CLEARED)
