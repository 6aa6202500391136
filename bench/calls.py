"""Driving calls: one client in a row, or many clients at once, each timing its own calls.

Each concurrent client is a thread with its own keep-alive connection (an ``httpx.Client`` or a
boto3 client), released together by a barrier so that they really overlap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

C = TypeVar("C")


@dataclass
class Timed:
    """Latencies in ms of the calls that succeeded, what they returned, and the errors of the rest."""

    ms: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def extend(self, other: Timed) -> None:
        self.ms += other.ms
        self.results += other.results
        self.errors += other.errors


def timed_calls(client: C, call: Callable[[C], Any], count: int) -> Timed:
    """``count`` calls in a row; a call raises to say it failed."""
    out = Timed()
    for _ in range(count):
        started = time.perf_counter()
        try:
            result = call(client)
        except Exception as e:  # a failed call is a figure of the benchmark, not a crash
            out.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
            continue
        out.ms.append((time.perf_counter() - started) * 1000)
        out.results.append(result)
    return out


def concurrently(clients: list[C], call: Callable[[C], Any], count: int) -> Timed:
    """Every client makes ``count`` calls in a row, all clients at once."""
    barrier = threading.Barrier(len(clients) + 1)
    parts: list[Timed] = [Timed() for _ in clients]

    def work(i: int) -> None:
        barrier.wait()
        parts[i] = timed_calls(clients[i], call, count)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    out = Timed(seconds=time.perf_counter() - started)
    for part in parts:
        out.extend(part)
    return out


def unique_name(prefix: str = "b") -> str:
    """A project name no other job of the run has: create-project refuses a taken name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def post_create_project(client: httpx.Client) -> dict[str, Any]:
    """``POST /jobs`` of a create-project job; the accepted job, or an error for any other answer."""
    response = client.post("/jobs", json={"type": "create-project", "params": {"name": unique_name()}})
    if response.status_code != 202:
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:200]}")
    return response.json()


def start_bare(machine_arn: str, prefix: str = "bare-") -> Callable[[Any], dict[str, Any]]:
    """A bare ``StartExecution`` of ``machine_arn`` with a unique name (without one, moto's ARN ends in None)."""

    def call(sfn: Any) -> dict[str, Any]:
        return sfn.start_execution(stateMachineArn=machine_arn, name=f"{prefix}{uuid.uuid4().hex}", input="{}")

    return call
