"""A build's log, shipped as it is written: to CloudWatch Logs and to the user as ``job.log`` events.

Lines are gathered and sent in batches: when the oldest waiting line is ``FLUSH_SECONDS`` old, or
when a batch reaches ``MAX_EVENT_BYTES`` (a ``job.log`` event stays well under API Gateway's
32 KiB WebSocket frame). A flood of output becomes a few events a second, not one a line. Every
line goes to CloudWatch; the live copy stops at ``LIVE_MAX_BYTES`` with a line that says where the
rest is, so a runaway build cannot fill the job's event history.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from core import builds

logger = Logger(child=True)

FLUSH_SECONDS = 0.2
MAX_EVENT_BYTES = 24 * 1024
LIVE_MAX_BYTES = 4 * 1024 * 1024

Publish = Callable[[list[str]], Any]


def ensure_stream(logs: Any, group: str, stream: str) -> None:
    """The project's log group (with the stack's retention, set when it is made) and the build's stream."""
    try:
        logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=builds.log_retention_days())
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise


def _size(line: str) -> int:
    return len(json.dumps(line)) + 1


def fit(line: str) -> str:
    """The line, cut so that its JSON (escapes included: a control character takes 6 bytes) fits one event."""
    if _size(line) <= MAX_EVENT_BYTES:
        return line
    keep = len(line)
    while keep and _size(line[:keep]) + 64 > MAX_EVENT_BYTES:
        keep = keep * 3 // 4
    return line[:keep] + f" …[{len(line) - keep} more characters of this line cut]"


class LogShipper:
    """Takes lines from the build's reader, sends them in order from a thread of its own."""

    def __init__(self, logs: Any, group: str, stream: str, publish: Publish) -> None:
        self.logs, self.group, self.stream, self.publish = logs, group, stream, publish
        self._waiting: list[tuple[int, str]] = []
        self._waiting_bytes = 0
        self._oldest = 0.0
        self._closing = False
        self._live_bytes = 0
        self._live_cut = False
        self.lines_written = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"logs-{stream}", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        line = fit(line)
        with self._cond:
            first = not self._waiting
            if first:
                self._oldest = time.monotonic()
            self._waiting.append((int(time.time() * 1000), line))
            self._waiting_bytes += _size(line)
            self.lines_written += 1
            if first or self._waiting_bytes >= MAX_EVENT_BYTES:
                self._cond.notify()  # the sender starts the batch's clock, or sends a full batch now

    def close(self) -> None:
        """Send what is left and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30)

    def _take(self) -> list[tuple[int, str]] | None:
        with self._cond:
            while True:
                if self._waiting:
                    due = self._oldest + FLUSH_SECONDS - time.monotonic()
                    if due <= 0 or self._waiting_bytes >= MAX_EVENT_BYTES or self._closing:
                        break
                    self._cond.wait(due)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            batch, size = [], 0
            while self._waiting and (not batch or size + _size(self._waiting[0][1]) <= MAX_EVENT_BYTES):
                item = self._waiting.pop(0)
                size += _size(item[1])
                batch.append(item)
            self._waiting_bytes -= size
            self._oldest = time.monotonic()
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._to_cloudwatch(batch)
            self._to_user([line for _, line in batch])

    def _to_cloudwatch(self, batch: list[tuple[int, str]]) -> None:
        events = [{"timestamp": at, "message": line or " "} for at, line in batch]  # a log event is never empty
        try:
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)
        except Exception:
            logger.exception("could not write the build's log to CloudWatch Logs", extra={"stream": self.stream})

    def _to_user(self, lines: list[str]) -> None:
        if self._live_cut:
            return
        size = sum(_size(line) for line in lines)
        if self._live_bytes + size > LIVE_MAX_BYTES:
            self._live_cut = True
            lines = [f"[longrun] the live log stops after {LIVE_MAX_BYTES // 1024 // 1024} MiB; "
                     f"the whole log is in CloudWatch Logs ({self.group}, stream {self.stream}): "
                     f"longrun logs {self.stream}"]  # fmt: skip
        self._live_bytes += size
        try:
            self.publish(lines)
        except Exception:
            logger.exception("could not publish the build's log lines", extra={"stream": self.stream})
