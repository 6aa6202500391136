"""Logs, traces and job metrics, set up once the Powertools way for every Lambda handler.

Each handler module imports ``logger`` and ``tracer`` from here and wraps its handler::

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    def handler(event, context): ...

then calls :func:`append_job_keys` as soon as it knows the job, so that every line it logs can be
found by ``jobId``, ``executionArn`` or ``userId`` in CloudWatch Logs Insights. The service name
comes from ``POWERTOOLS_SERVICE_NAME`` and the metrics namespace from
``POWERTOOLS_METRICS_NAMESPACE`` (both in the template's Globals). Where
``POWERTOOLS_TRACE_DISABLED`` is true (the unit tests; the local cloud, which has no X-Ray
daemon) the Tracer is a no-op: the same code traces on AWS.

The job metrics (``JobsStarted``, ``JobsFinished``, ``JobDuration``) are written with
``single_metric`` rather than the ``Metrics`` singleton and its ``log_metrics`` decorator, because
the code that starts and closes jobs (``core.launcher``, ``core.publisher.finish``) runs inside
many handlers: the API, the notify step, the triggers. One SQS batch can close jobs of several
types and statuses in one invocation while a metric set has one set of dimensions, and a handler
that forgot ``log_metrics`` would silently drop the singleton's metrics. ``single_metric`` prints
each data point at once as one EMF line on stdout (CloudWatch turns it into a metric): no network
call, a few microseconds on ``POST /jobs``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice


class _Untraced:
    """What a handler uses of the Tracer, doing nothing: where tracing is off, the X-Ray SDK is never imported.

    Powertools' Tracer imports the X-Ray SDK even when ``POWERTOOLS_TRACE_DISABLED`` is true, and
    that import builds a botocore X-Ray client for the SDK's sampler (aws/aws-xray-sdk-python#311):
    130 to 180 ms of every function's cold start. Where tracing is off (the local cloud, the unit
    tests, a deployment that turns it off) that cost buys nothing.
    """

    disabled = True

    @staticmethod
    def capture_lambda_handler(handler: Any = None, **_: Any) -> Any:
        return handler if handler is not None else (lambda fn: fn)

    @staticmethod
    def capture_method(method: Any = None, **_: Any) -> Any:
        return method if method is not None else (lambda fn: fn)

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def tracing_enabled() -> bool:
    """Powertools' own switch, read the way Powertools reads it."""
    return not resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false"))


logger = Logger()
tracer: Tracer | _Untraced = Tracer() if tracing_enabled() else _Untraced()

# The keys every log line of a job carries, as the API and the events name them.
JOB_KEYS = ("jobId", "executionArn", "userId")
_MAX_KEY_LENGTH = 256  # a key comes from input at the edges (a WebSocket message): never log a megabyte


def _text(value: Any) -> str | None:
    return value[:_MAX_KEY_LENGTH] if isinstance(value, str) and value else None


def append_job_keys(source: Mapping[str, Any] | None = None, **keys: Any) -> None:
    """Put ``jobId``, ``executionArn`` and ``userId`` on every following log line of this invocation.

    ``source`` is whatever names the job: a step's input, a job record, an execution status
    event's detail. ``keys`` add to or override it (``userId=...``, or others such as ``step``).
    A key that is not known is set to ``None``, which Powertools leaves out of the line: a record
    of an SQS batch never carries the job of the record before it. The job id is also an X-Ray
    annotation, so a trace can be found by job.
    """
    given = source or {}
    values = {name: _text(given.get(name)) for name in JOB_KEYS}
    values.update({name: (_text(value) if name in JOB_KEYS else value) for name, value in keys.items()})
    logger.append_keys(**values)
    if values["jobId"] and not tracer.disabled:
        # Observability never fails a job: outside a traced handler X-Ray refuses annotations.
        with contextlib.suppress(Exception):
            tracer.put_annotation(key="jobId", value=values["jobId"])


def job_started(job: Mapping[str, Any]) -> None:
    """Count a job whose execution started: ``JobsStarted`` by ``type``."""
    with single_metric(name="JobsStarted", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="type", value=str(job["type"]))


def duration_ms(started_at: Any, ended_at: str) -> float | None:
    """Milliseconds between two of the job's ISO 8601 timestamps; ``None`` if one is missing or malformed."""
    try:
        start = datetime.fromisoformat(str(started_at).replace("Z", "+00:00"))
        end = datetime.fromisoformat(ended_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds() * 1000)


def job_finished(job: Mapping[str, Any], status: str, ended_at: str) -> None:
    """Count a job's close: ``JobsFinished`` by ``type`` and ``status``, and its ``JobDuration`` by ``type``.

    Called once per job, by whichever writer closed it (the conditional write that succeeded).
    The duration runs from the job's acceptance (``createdAt``) to its close, so it is what the
    user waited, queueing for a build worker included.
    """
    job_type = str(job["type"])
    with single_metric(name="JobsFinished", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="type", value=job_type)
        metric.add_dimension(name="status", value=status)
    elapsed = duration_ms(job.get("createdAt"), ended_at)
    if elapsed is not None:
        with single_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=elapsed) as metric:
            metric.add_dimension(name="type", value=job_type)
