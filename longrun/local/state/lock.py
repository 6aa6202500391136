"""One local cloud per data dir: an ``fcntl`` lock on ``<data-dir>/longrun.lock``, held while the cloud runs.

Two clouds saving into one ``state`` directory would overwrite each other's snapshots. The lock is
the kernel's (``flock``): it is released when the holder exits, however it exits, so a SIGKILLed
cloud never leaves a stale lock behind. The holder's pid is written in the file for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "longrun.lock"


class DataDirLocked(RuntimeError):
    """Another local cloud runs on this data dir."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, doing: str = "start a local cloud") -> None:
        """Take the lock or raise :class:`DataDirLocked` naming the holder; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirLocked(
                f"cannot {doing}: a local cloud (pid {holder}) runs on the data dir {self.path.parent}; "
                "stop it first (Ctrl-C or SIGTERM), or give another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
