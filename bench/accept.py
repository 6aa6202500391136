"""Accept latency: how long ``POST /jobs`` takes to answer ``202`` with a job id.

The path measured is the user's: REST front → authorizer (cached per token, as API Gateway does)
→ API Lambda → DynamoDB → ``StartExecution``. The baseline is that last call alone, a bare
``StartExecution`` of a one-Pass machine on the same engine.

Every accepted job really runs afterwards and loads the two cores, so the baseline is measured
under the same load: each client alternates a bare ``StartExecution`` and a ``POST /jobs``, then
waits for its job to finish before the next pair, as a user who starts a job and watches it does.
At 10 and at 50 clients that keeps up to 10 and 50 jobs running while the calls are timed, on
both sides alike. The target is the issue's: the accept path's p99 within 2x the bare call's at
both, which holds only if the engine's ``StartExecution`` does not slow down with the executions it
runs (moto's engine has a process of its own for that: ``longrun.local.aws_server``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench import machines
from bench.calls import Timed, concurrently, post_create_project, start_bare, timed_calls
from bench.cloud import Cloud, Quiet
from bench.report import Row, Section
from bench.stats import percentile


@dataclass
class Settings:
    # Every request is a job that takes about 0.7 s of this machine to run, and the run must stay
    # within minutes: hence fewer requests than a latency benchmark would like (p99 of a round is
    # close to its maximum), and the median over rounds.
    rounds: int = 3
    solo_requests: int = 15  # pairs per round at one client
    solo_warmup: int = 2
    # (concurrent clients, pairs per client per round): each level's round is about 40-100 jobs.
    levels: tuple[tuple[int, int], ...] = ((10, 4), (50, 2))

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1, solo_requests=5, solo_warmup=2, levels=((10, 1), (50, 1)))


def _wait_finished(client: httpx.Client, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/jobs/{job_id}").json().get("status") != "RUNNING":
            return
        time.sleep(0.05)


def paired(clients: list[tuple[Any, httpx.Client]], bare: Callable[[Any], Any], count: int) -> tuple[Timed, Timed]:
    """Each client, all at once: ``count`` times a bare StartExecution, a POST, then wait for the job."""

    def pair(client: tuple[Any, httpx.Client]) -> tuple[Timed, Timed]:
        sfn, rest = client
        baseline, longrun = timed_calls(sfn, bare, 1), timed_calls(rest, post_create_project, 1)
        for job in longrun.results:
            _wait_finished(rest, job["jobId"])
        return baseline, longrun

    results: list[tuple[Timed, Timed]] = []
    lock = threading.Lock()

    def work(client: tuple[Any, httpx.Client]) -> None:
        for _ in range(count):
            outcome = pair(client)
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    baseline, longrun = Timed(), Timed()
    for b, lr in results:
        baseline.extend(b)
        longrun.extend(lr)
    baseline.seconds = longrun.seconds = time.perf_counter() - started
    return baseline, longrun


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("accept latency")
    machine = machines.create(cloud, 1)
    bare = start_bare(machine)
    solo_user = "bench-accept-solo"
    most = max(clients for clients, _ in s.levels)
    users = [f"bench-accept-{i:02d}" for i in range(most)]
    rest = {user: cloud.rest(user) for user in [solo_user, *users]}
    crowd = [rest[user] for user in users]
    sfn_solo = cloud.aws_client("stepfunctions")
    sfn_crowd = [cloud.aws_client("stepfunctions") for _ in users]

    waited = Quiet()

    def quiet() -> None:
        waited.extend(cloud.wait_jobs_done(rest))
        cloud.wait_executions_done(machine)

    # Warm-up, not measured: opens every keep-alive connection, fills the authorizer's cache for
    # every token and starts the API's execution environments (cold starts are not accept latency).
    say("accept: warm-up")
    warm = [
        timed_calls(sfn_solo, bare, s.solo_warmup),
        timed_calls(rest[solo_user], post_create_project, s.solo_warmup),
        concurrently(sfn_crowd, bare, 1),
        concurrently(crowd, post_create_project, 1),
    ]
    quiet()

    solo_b: list[Timed] = []
    solo_l: list[Timed] = []
    crowd_b: dict[int, list[Timed]] = {clients: [] for clients, _ in s.levels}
    crowd_l: dict[int, list[Timed]] = {clients: [] for clients, _ in s.levels}
    for r in range(s.rounds):
        say(f"accept: round {r + 1}/{s.rounds}: 1 client")
        baseline, longrun = paired([(sfn_solo, rest[solo_user])], bare, s.solo_requests)
        solo_b.append(baseline)
        solo_l.append(longrun)
        quiet()
        for clients, per_client in s.levels:
            say(f"accept: round {r + 1}/{s.rounds}: {clients} clients")
            pairs = list(zip(sfn_crowd[:clients], crowd[:clients], strict=True))
            baseline, longrun = paired(pairs, bare, per_client)
            crowd_b[clients].append(baseline)
            crowd_l[clients].append(longrun)
            quiet()

    def per_round(timings: list[Timed], p: float) -> list[float]:
        return [percentile(t.ms, p) for t in timings]

    bare_label = "bare StartExecution"
    section.rows = [
        Row("Accept p50, 1 client", "ms", per_round(solo_l, 50), per_round(solo_b, 50), bare_label,
            target="< 25 ms", check=lambda v, _b: v < 25),
        Row("Accept p99, 1 client", "ms", per_round(solo_l, 99), per_round(solo_b, 99), bare_label),
    ]  # fmt: skip
    for clients, _ in s.levels:
        section.rows += [
            Row(f"Accept p50, {clients} concurrent clients", "ms", per_round(crowd_l[clients], 50),
                per_round(crowd_b[clients], 50), bare_label),
            Row(f"Accept p99, {clients} concurrent clients", "ms", per_round(crowd_l[clients], 99),
                per_round(crowd_b[clients], 99), bare_label, target="≤ 2x baseline", check=lambda v, b: v <= 2 * b),
        ]  # fmt: skip

    # The engine alone: its StartExecution under the load of the jobs in flight, beside the same call idle.
    busiest = max(clients for clients, _ in s.levels)
    section.rows.append(
        Row(f"Engine StartExecution p99, {busiest} clients with jobs in flight", "ms",
            per_round(crowd_b[busiest], 99), per_round(solo_b, 99), "the same call, 1 client"),
    )  # fmt: skip

    crowds = [t for clients, _ in s.levels for t in [*crowd_b[clients], *crowd_l[clients]]]
    errors = [e for t in [*warm, *solo_b, *solo_l, *crowds] for e in t.errors]
    accepted = sum(len(t.ms) for t in [*solo_l, *(t for c, _ in s.levels for t in crowd_l[c])])
    section.notes.append(
        f"per round: 1 client x {s.solo_requests} pairs, then "
        + ", then ".join(f"{clients} clients x {per} pairs" for clients, per in s.levels)
        + " (bare StartExecution on the engine's endpoint, POST /jobs, wait for the job; own keep-alive "
        f"connection and user each); {accepted} jobs accepted and measured, after {s.solo_warmup} + {most} "
        "warm-up requests"
    )
    for clients, per_client in s.levels:
        section.notes.append(
            f"{clients} clients: their {clients * per_client} pairs and jobs took "
            + ", ".join(f"{t.seconds:.2f}" for t in crowd_l[clients])
            + " s"
        )
    section.notes.append(waited.note())
    section.notes.append(f"errors: {len(errors)}" + (f" — first: {errors[0]}" if errors else ""))
    for client in rest.values():
        client.close()
    return section
