"""What a build may reach: its own project's files, an environment of its own, nothing of the worker's.

The worker holds AWS credentials (its task role) and the file system holds every project; the
build is the user's code. So:

* **Its own user.** A worker that runs as root (as its container does) runs each build as its
  project's uid (:mod:`core.build_users`) and gives the project's workspace and cache to that uid
  with mode 0700 (:func:`claim`); the directories that hold all workspaces and caches are 0711
  (enter, not list). A build of another project cannot list, read or write them, and cannot read
  the worker's ``/proc/<pid>/environ`` or memory (another user's, and non-dumpable besides).
* **Its own environment**, built from an allow-list, never the worker's: a PATH, a HOME and TMPDIR
  of its own, the project's cache.

A worker that is not root cannot change users: its builds run as itself and could reach other
projects' files. It says so at start; run it as root in its container.
"""

from __future__ import annotations

import ctypes
import os
import stat
from pathlib import Path

from aws_lambda_powertools import Logger

logger = Logger(child=True)

_PR_SET_DUMPABLE = 4
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PRIVATE = 0o700
ENTER_ONLY = 0o711


def make_worker_undumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``: the worker's environment and memory closed to its builds."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def can_switch_users() -> bool:
    return os.geteuid() == 0


def warn_if_shared() -> None:
    if not can_switch_users():
        logger.warning("the build worker is not root: builds run as its own user and could reach other "
                       "projects' files; run it as root in its container")  # fmt: skip


def claim(directory: Path, uid: int) -> None:
    """Give ``directory`` and everything in it to ``uid`` (mode 0700 at the top); its parent stays enter-only.

    What the workflow steps wrote since the last build (they run as another user) changes hands
    here. Symlinks are changed themselves (``lchown``), never followed.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(directory.parent, ENTER_ONLY)
    directory.mkdir(exist_ok=True)
    top = os.lstat(directory)
    if stat.S_ISLNK(top.st_mode) or not stat.S_ISDIR(top.st_mode):
        raise NotADirectoryError(f"{directory} is not a directory")
    for root, dirs, files in os.walk(directory, followlinks=False):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            if os.lstat(path).st_uid != uid:
                os.lchown(path, uid, uid)
    os.chown(directory, uid, uid)
    os.chmod(directory, PRIVATE)


def private_home(home: Path, uid: int | None) -> None:
    """The build's HOME and TMPDIR, its own."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    if uid is not None:
        for path in (home, home / "tmp"):
            os.chown(path, uid, uid)
            os.chmod(path, PRIVATE)


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
