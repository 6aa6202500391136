"""``longrun logs JOB_ID [--follow]``: a build's log, read from its CloudWatch Logs stream.

The stream is the job's (one per build, named by the job id) in the project's log group; the job
record says which project. ``--follow`` keeps reading until the job has finished and the stream
has nothing more, as ``aws logs tail --follow`` would, but it stops by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from longrun.operator import OperatorError, client, job_item, output

FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"})
POLL_SECONDS = 1.0


def _job(stack: str, job_id: str) -> dict[str, Any]:
    item = job_item(stack, job_id)
    if item.get("type", {}).get("S") != "build":
        raise OperatorError(f"job {job_id} is a {item.get('type', {}).get('S')} job; only builds have a log")
    return {"projectId": item["projectId"]["S"], "status": item["status"]["S"]}


def lines(stack: str, job_id: str, follow: bool = False, sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """The build's log lines from the first; with ``follow``, until the job is over and read to the end."""
    job = _job(stack, job_id)
    logs = client("logs")
    group = output(stack, "BuildLogGroupPrefix") + job["projectId"]
    token: str | None = None
    while True:
        finished = job["status"] in FINAL  # read before the stream: a last batch is never missed
        got = 0
        try:
            while True:
                kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": job_id, "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                page = logs.get_log_events(**kwargs)
                for event in page["events"]:
                    got += 1
                    # A log event is never empty: the worker stores an empty line as one space.
                    yield "" if event["message"] == " " else event["message"]
                if page.get("nextForwardToken") in (None, token):
                    break
                token = page["nextForwardToken"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            if not follow or finished:
                if finished:
                    return
                raise OperatorError(f"job {job_id} has no log yet (the build has not started)") from None
        if not follow or (finished and got == 0):
            return
        sleep(POLL_SECONDS)
        job = _job(stack, job_id)
