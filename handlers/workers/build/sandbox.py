"""What a build may see of the worker: a scrubbed environment and no way into the worker's memory.

The worker holds AWS credentials (its task role) and may hold other users' data in memory; the
build is the user's code. So the build gets an environment built from an allow-list (never the
worker's), a HOME and TMPDIR of its own, and the project's cache directory. The worker makes
itself non-dumpable, so a process of the same user cannot read its ``/proc/<pid>/environ`` or
memory. A worker that runs as root (a container's default user) also runs the build in a user
namespace of its own, since root may read any non-dumpable process; run it as a non-root user
where user namespaces are not allowed (Fargate's default seccomp profile refuses them).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from aws_lambda_powertools import Logger

logger = Logger(child=True)

_PR_SET_DUMPABLE = 4
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def make_worker_undumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: the worker's environment and memory closed to its builds."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@cache
def namespace_prefix() -> tuple[str, ...]:
    """The command prefix that puts a build in a user namespace, when the worker runs as root."""
    if os.geteuid() != 0:
        return ()
    unshare = shutil.which("unshare")
    if unshare:
        probe = subprocess.run([unshare, "--user", "--map-root-user", "true"], capture_output=True, timeout=10)
        if probe.returncode == 0:
            return (unshare, "--user", "--map-root-user", "--")
    logger.warning("the worker runs as root and cannot make user namespaces: builds could read its memory; "
                   "run it as a non-root user")  # fmt: skip
    return ()


def build_environment(
    *, job_id: str, project_id: str, workspace: Path, cache_dir: Path, home: Path, path: str | None = None
) -> dict[str, str]:
    """The whole environment of a build: nothing of the worker's but a PATH."""
    return {
        "PATH": path or SAFE_PATH,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "CI": "true",
        "LONGRUN_JOB_ID": job_id,
        "LONGRUN_PROJECT_ID": project_id,
        "LONGRUN_WORKSPACE": str(workspace),
        "LONGRUN_CACHE_DIR": str(cache_dir),
        # Package managers keep their downloads in the project's cache, which outlives the build.
        "XDG_CACHE_HOME": str(cache_dir / "xdg"),
        "npm_config_cache": str(cache_dir / "npm"),
        "PIP_CACHE_DIR": str(cache_dir / "pip"),
        "GRADLE_USER_HOME": str(cache_dir / "gradle"),
        "GOMODCACHE": str(cache_dir / "go-mod"),
    }
