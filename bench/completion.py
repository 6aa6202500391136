"""Completion latency: from the notify step's write to the client's receipt of ``job.finished``.

The publisher stamps ``at`` just before the DynamoDB transaction that closes the job, so
``receive time - at`` covers the write, finding the job's subscribers and the push through the
``@connections`` API and the WebSocket front. Client and local cloud share one machine and one
clock; ``at`` has millisecond precision (truncated), so a figure may read up to 1 ms high.

The baseline is a WebSocket ``ping`` → ``pong`` round trip on the same connection, taken right
after each ``job.finished`` under the same load: it goes through the ``$default`` Lambda and the
``@connections`` API, the same push path without the write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.sync.client import ClientConnection

from bench.calls import post_create_project
from bench.cloud import Cloud, parse_time
from bench.report import Row, Section
from bench.stats import percentile


@dataclass
class Settings:
    rounds: int = 3
    clients: int = 5  # jobs in flight at once, one client (user, connection) each
    jobs_per_client: int = 2  # per round
    # Per round, before the others: jobs one at a time, so the report separates the cost of the
    # path itself from that of sharing two cores with the other jobs in flight.
    solo_jobs: int = 5

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1, clients=5, jobs_per_client=1, solo_jobs=2)


@dataclass
class _Samples:
    finished_ms: list[float] = field(default_factory=list)
    ping_ms: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    late: int = 0  # job.finished written before we subscribed: it measures the subscription, not the push


def until(
    ws: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[dict[str, Any], float]:
    """The first message that matches, and the wall-clock time it arrived."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no matching WebSocket message")
        raw = ws.recv(timeout=remaining)
        received = time.time()
        message = json.loads(raw)
        if message.get("type") == "error":
            raise RuntimeError(f"WebSocket error: {message}")
        if match(message):
            return message, received


def _client(cloud: Cloud, user: str, jobs: int, out: _Samples, start: threading.Barrier) -> None:
    rest = cloud.rest(user)
    try:
        with cloud.websocket(user) as ws:
            start.wait()
            for _ in range(jobs):
                try:
                    job = post_create_project(rest)
                    subscribed_at = time.time()
                    ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
                    finished, received = until(
                        ws, lambda m, j=job["jobId"]: m.get("type") == "job.finished" and m.get("jobId") == j, 60
                    )
                    written = parse_time(finished["at"])
                    out.statuses.append(finished["status"])
                    if written < subscribed_at - 0.001:
                        out.late += 1
                    else:
                        out.finished_ms.append((received - written) * 1000)
                    ws.send(json.dumps({"action": "ping"}))
                    sent = time.perf_counter()
                    until(ws, lambda m: m.get("type") == "pong", 30)
                    out.ping_ms.append((time.perf_counter() - sent) * 1000)
                except Exception as e:  # counted and reported with the figures
                    out.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
    finally:
        rest.close()


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("completion latency")
    rounds: list[_Samples] = []
    solo: list[_Samples] = []
    for r in range(s.rounds):
        say(f"completion: round {r + 1}/{s.rounds}")
        solo.append(_Samples())
        _client(cloud, "bench-done-solo", s.solo_jobs, solo[-1], threading.Barrier(1))
        samples = _Samples()
        start = threading.Barrier(s.clients)
        threads = [
            threading.Thread(target=_client, args=(cloud, f"bench-done-{i}", s.jobs_per_client, samples, start))
            for i in range(s.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rounds.append(samples)

    def per_round(pick: Callable[[_Samples], list[float]], p: float, of: list[_Samples] = rounds) -> list[float]:
        return [percentile(pick(x), p) for x in of]

    def done(x: _Samples) -> list[float]:
        return x.finished_ms

    def ping(x: _Samples) -> list[float]:
        return x.ping_ms

    label = "WebSocket ping→pong"
    section.rows = [
        Row(f"Completion p50 (write → job.finished received), {s.clients} jobs at once", "ms", per_round(done, 50),
            per_round(ping, 50), label),
        Row(f"Completion p99 (write → job.finished received), {s.clients} jobs at once", "ms", per_round(done, 99),
            per_round(ping, 99), label, target="< 50 ms", check=lambda v, _b: v < 50),
        Row("Completion p99, one job at a time", "ms", per_round(done, 99, solo), per_round(ping, 99, solo), label),
    ]  # fmt: skip
    statuses: dict[str, int] = {}
    for x in [*rounds, *solo]:
        for status in x.statuses:
            statuses[status] = statuses.get(status, 0) + 1
    errors = [e for x in [*rounds, *solo] for e in x.errors]
    section.notes.append(
        f"per round: {s.solo_jobs} jobs one at a time, then {s.clients} clients at once with {s.jobs_per_client} "
        f"jobs each in a row (subscribe right after POST, one ping after each job.finished); samples per round: "
        f"{[len(x.finished_ms) for x in rounds]} (at once), {[len(x.finished_ms) for x in solo]} (one at a time); "
        f"job statuses: {statuses}"
    )
    section.notes.append(
        "one job at a time, p50 per round: "
        + ", ".join(f"{v:.1f}" for v in per_round(done, 50, solo))
        + " ms (ping "
        + ", ".join(f"{v:.1f}" for v in per_round(ping, 50, solo))
        + " ms)"
    )
    late = sum(x.late for x in [*rounds, *solo])
    if late:
        section.notes.append(f"{late} jobs finished before their subscription was sent: left out of the figures")
    section.notes.append(f"errors: {len(errors)}" + (f" — first: {errors[0]}" if errors else ""))
    return section
