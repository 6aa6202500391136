"""A build's process: its own process group, one merged output stream, a kill that reaches every child.

stdout and stderr share one pipe, so lines keep the order the build wrote them in. The build
leads a process group of its own (in the worker's session, so whatever stops the worker's task
finds it); stopping it signals the whole group: ``SIGTERM``, a grace period, then ``SIGKILL`` for
whatever ignored it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

MAX_LINE_BYTES = 8 * 1024


class BuildProcess:
    def __init__(self, command: str, *, cwd: Path, env: dict[str, str], user: int | None = None) -> None:
        """Start ``command``; as ``user`` (its own group, no others) when given (the worker must be root)."""
        self.started = time.monotonic()
        as_user = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=env,
            **as_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            close_fds=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> Iterator[str]:
        """The build's output, a line at a time (without its newline); a line over 8 KiB is cut."""
        assert self.popen.stdout is not None
        stream = self.popen.stdout
        while True:
            raw = stream.readline(MAX_LINE_BYTES)
            if not raw:
                return
            if not raw.endswith(b"\n") and len(raw) >= MAX_LINE_BYTES:
                skipped = 0
                while rest := stream.readline(64 * 1024):
                    skipped += len(rest.rstrip(b"\r\n"))
                    if rest.endswith(b"\n"):
                        break
                text = raw.decode("utf-8", "replace")
                yield text + f" …[{skipped} more bytes of this line cut]" if skipped else text
                continue
            yield raw.rstrip(b"\r\n").decode("utf-8", "replace")

    def wait(self) -> int:
        return self.popen.wait()

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def kill_group(self, grace_seconds: float = 2.0) -> None:
        """``SIGTERM`` to the build's process group, then ``SIGKILL`` to what is left of it."""
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if self.popen.poll() is not None and not _group_alive(self.popen.pid):
                return
            time.sleep(0.05)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
