"""The shape every workflow step shares: report ``STARTED``, do one short piece of work, report the end.

A step handler receives the state machine's input (``jobId``, ``userId``, ``projectId``, ``type``,
``params`` and what earlier steps returned) and trusts it: input was validated at the edge.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from core import publisher
from core.observability import append_job_keys
from core.workflow_errors import TransientError

# botocore error codes that mean "try again": the state machine's Retry handles ``TransientError``.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "TransactionConflictException",
    }
)

Handler = Callable[[dict[str, Any], Any], Any]


def job_step(
    name: str,
    summary: Callable[[Any], dict[str, Any]] | None = None,
    *,
    starts: Callable[[dict[str, Any]], bool] | None = None,
    ends: Callable[[Any], bool] | None = None,
) -> Callable[[Handler], Handler]:
    """Wrap a step handler so that its progress reaches the user, whatever happens inside.

    A transient AWS error is re-raised as ``TransientError`` (reported ``RETRYING``); anything
    else is reported ``FAILED`` with its name and message and re-raised for the state machine's
    ``Catch``. ``summary`` picks what of the result goes into the ``SUCCEEDED`` event's detail.
    A step that a state machine loops over (a listing with a cursor) reports ``STARTED`` only for
    the rounds ``starts`` picks and ``SUCCEEDED`` only for the results ``ends`` picks.
    """

    def decorate(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def wrapper(event: dict[str, Any], context: Any) -> Any:
            append_job_keys(event, step=name)
            started = publisher.progress(event, name, "STARTED") if starts is None or starts(event) else None
            seq = started["seq"] if started else None
            try:
                result = fn(event, context)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code in _TRANSIENT_CODES:
                    publisher.progress(event, name, "RETRYING", {"code": code}, after_seq=seq)
                    raise TransientError(f"{code}: {e}") from e
                publisher.progress(
                    event, name, "FAILED", {"code": code or "ClientError", "message": str(e)}, after_seq=seq
                )
                raise
            except TransientError as e:
                publisher.progress(event, name, "RETRYING", {"message": str(e)}, after_seq=seq)
                raise
            except Exception as e:
                detail = {"code": type(e).__name__, "message": getattr(e, "message", None) or str(e)}
                if getattr(e, "details", None):
                    detail["details"] = e.details
                publisher.progress(event, name, "FAILED", detail, after_seq=seq)
                raise
            if ends is None or ends(result):
                publisher.progress(event, name, "SUCCEEDED", summary(result) if summary else {}, after_seq=seq)
            return result

        return wrapper

    return decorate
