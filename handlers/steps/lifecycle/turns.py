"""How long one turn of delete-project's loops works: a bounded time, then the state machine asks again.

A turn starts a new page (S3) or file (EFS) only while less than ``TURN_SECONDS`` have passed, so
no invocation runs long (the functions' Timeout is far above one page's worst), and a turn that is
not the last lasted at least ``TURN_SECONDS``: the loops take at most the machine's
``TimeoutSeconds / TURN_SECONDS`` turns together, which keeps the execution's history far under
Step Functions' 25,000 events (tests/infra/test_delete_project_machine.py counts it).
"""

from __future__ import annotations

import time

TURN_SECONDS = 20


def clock() -> float:
    """Seconds on a monotonic clock (tests patch it to make a turn end without sleeping)."""
    return time.monotonic()


class Turn:
    """The time budget of one invocation."""

    def __init__(self, seconds: float = TURN_SECONDS) -> None:
        self.seconds = seconds
        self.started = clock()

    def over(self) -> bool:
        return clock() - self.started >= self.seconds
