"""Builds: how soon a build's output reaches the user, and what the project's build cache saves.

Three measurements, on the local cloud's two build workers, builds one at a time:

* **Dispatch latency**: from the start of ``POST /jobs`` of a build whose command is
  ``echo first-line`` to the arrival, on a WebSocket subscribed to the project before the POST, of
  the ``job.log`` event that carries that line. It covers the API, Step Functions, the Prepare
  Lambda, the ``sqs:sendMessage.waitForTaskToken`` task, a worker's long poll, the process and the
  log shipper (which batches lines for up to 0.2 s, or until the build ends), then the event's
  DynamoDB write and push. One build right after the cloud starts pays cold Lambdas and clients:
  it is a warm-up, left out of the figures and shown in the notes.
* **Log latency**: a build prints its own wall-clock time on each line, a line every 0.1 s; the
  figure is the receipt time of each line minus the time it holds, over every line of a few builds.
  Client and local cloud share one machine and one clock.
* **Warm cache**: the default scaffold's own build (no command: ``sh build.sh`` from its
  ``longrun.json``, which keeps gzip results in ``$LONGRUN_CACHE_DIR``), the second build of a fresh
  project (warm cache) beside its first (cold), each from ``POST /jobs`` to ``job.finished``; then
  the worker's part alone (its ``build`` step, STARTED to SUCCEEDED) and the command's own time
  (the result's ``durationMs``). Every build that ran only at a second attempt is named in the notes.

The baseline of both latencies is the bare SQS round trip on the same AWS endpoint, taken between
the dispatch builds: ``SendMessage`` then a long-poll ``ReceiveMessage`` on a fresh queue. A variant
with the receiver already waiting in its long poll (as a worker waits) is in the notes. Targets:
dispatch p99 and log p99 under 1 second. The p50 and p99 are over all samples
of the run (a p99 of ten builds would only be their maximum), so those rows have one value each.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

from bench.calls import unique_name
from bench.cloud import Cloud, Quiet, parse_time
from bench.report import Row, Section
from bench.stats import fmt, median, percentile

NAN = float("nan")

USER = "bench-build"
FIRST_LINE = "first-line"
DISPATCH_COMMAND = f"echo {FIRST_LINE}"
STAMP = re.compile(r"^t=(\d+\.\d+)$")
# The scaffold's build.sh says how many files it compressed and how many it took from the cache.
SCAFFOLD_SUMMARY = re.compile(r"\((\d+) compressed, (\d+) from the cache\)")
SQS_LABEL = "SQS send→receive (long poll)"


@dataclass
class Settings:
    dispatch_builds: int = 30  # `echo first-line` builds, one at a time
    sqs_per_build: int = 2  # baseline round trips after each dispatch build
    log_builds: int = 3
    log_lines: int = 50  # per log build, one every log_interval seconds
    log_interval: float = 0.1
    cache_projects: int = 5  # fresh projects, each built twice (cold cache, then warm)
    build_timeout: float = 120  # seconds a build may take from POST to job.finished

    @classmethod
    def quick(cls) -> Settings:
        return cls(dispatch_builds=6, sqs_per_build=3, log_builds=1, log_lines=30, cache_projects=2)

    def log_command(self) -> str:
        return (
            f'i=0; while [ $i -lt {self.log_lines} ]; do echo "t=$(date +%s.%N)"; i=$((i + 1)); '
            f"sleep {self.log_interval}; done"
        )


@dataclass
class Followed:
    """One build, as the client saw it: when it was posted and every event of it with its receipt time."""

    job_id: str
    posted: float  # wall clock at the start of the POST
    answered: float  # wall clock when the POST's answer arrived
    events: list[tuple[dict[str, Any], float]] = field(default_factory=list)

    @property
    def finished(self) -> dict[str, Any] | None:
        return next((m for m, _ in self.events if m.get("type") == "job.finished"), None)

    def first(self, match: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any], float] | None:
        return next(((m, at) for m, at in self.events if match(m)), None)

    def step_at(self, step: str, status: str) -> float | None:
        found = self.first(lambda m: m.get("type") == "job.progress" and m.get("step") == step
                           and m.get("status") == status)  # fmt: skip
        return parse_time(found[0]["at"]) if found else None

    def lines(self) -> list[tuple[str, dict[str, Any], float]]:
        return [(line, m, at) for m, at in self.events if m.get("type") == "job.log" for line in m.get("lines", [])]

    def attempts(self) -> int:
        """The highest attempt a worker started (the build STARTED event's detail); 0 if none started."""
        return max((int(m.get("detail", {}).get("attempt", 1)) for m, _ in self.events
                    if m.get("type") == "job.progress" and m.get("step") == "build" and m.get("status") == "STARTED"),
                   default=0)  # fmt: skip

    def describe_failure(self) -> str | None:
        done = self.finished
        if done is None:
            return f"job {self.job_id}: no job.finished within the timeout"
        if done.get("status") != "SUCCEEDED":
            return f"job {self.job_id} ended {done.get('status')}: {json.dumps(done.get('error'))[:300]}"
        return None


class Watcher:
    """A WebSocket of the benchmark's user, subscribed to the projects it builds; reconnects if dropped."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.projects: list[str] = []
        self.reconnects = 0
        self.ws: ClientConnection = cloud.websocket(USER)
        self.followed: list[tuple[str, Followed]] = []  # every build, with what it was for

    def subscribe(self, project_id: str) -> None:
        self._subscribe(project_id)
        self.projects.append(project_id)

    def unsubscribe(self, project_id: str) -> None:
        self.ws.send(json.dumps({"action": "unsubscribe", "projectId": project_id}))
        self.projects.remove(project_id)

    def _subscribe(self, project_id: str) -> None:
        self.ws.send(json.dumps({"action": "subscribe", "projectId": project_id}))
        deadline = time.monotonic() + 30
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("type") == "error":
                raise RuntimeError(f"subscribe to project {project_id}: {message}")
            if message.get("type") == "subscribed" and message.get("projectId") == project_id:
                return

    def _reconnect(self) -> None:
        self.reconnects += 1
        with contextlib.suppress(Exception):
            self.ws.close()
        self.ws = self.cloud.websocket(USER)
        for project_id in self.projects:
            self._subscribe(project_id)

    def follow(self, rest: httpx.Client, body: dict[str, Any], timeout: float, kind: str) -> Followed:
        """POST a job and collect its events until ``job.finished`` (or the timeout)."""
        posted = time.time()
        response = rest.post("/jobs", json=body)
        answered = time.time()
        if response.status_code != 202:
            raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:300]}")
        out = Followed(response.json()["jobId"], posted, answered)
        self.followed.append((kind, out))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = self.ws.recv(timeout=remaining)
            except TimeoutError:
                break
            except Exception:  # the connection dropped: events pushed meanwhile are lost to this build
                self._reconnect()
                continue
            received = time.time()
            message = json.loads(raw)
            if message.get("jobId") != out.job_id:
                continue
            out.events.append((message, received))
            if message.get("type") == "job.finished":
                break
        return out


# --- the baseline -----------------------------------------------------------------------------------


class SqsBaseline:
    """A fresh queue on the local cloud's AWS endpoint, and round trips through it."""

    def __init__(self, cloud: Cloud) -> None:
        self.sqs = cloud.aws_client("sqs")
        self.url = self.sqs.create_queue(QueueName=f"bench-build-baseline-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        self.sequential_ms: list[float] = []
        self.waiting_ms: list[float] = []
        self.errors: list[str] = []

    def _receive(self) -> dict[str, Any]:
        messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=20).get(
            "Messages", []
        )
        if not messages:
            raise TimeoutError("the long poll returned no message")
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return messages[0]

    def sequential(self) -> None:
        """SendMessage, then a long-poll ReceiveMessage that finds it: the table's baseline."""
        try:
            started = time.perf_counter()
            self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps({"n": uuid.uuid4().hex}))
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=20)
            took = (time.perf_counter() - started) * 1000
            if not messages.get("Messages"):
                raise TimeoutError("the long poll returned no message")
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=messages["Messages"][0]["ReceiptHandle"])
            self.sequential_ms.append(took)
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")

    def waiting(self) -> None:
        """A receiver already in its long poll (as a worker waits), then SendMessage: send start → receipt."""
        received: list[float] = []
        failed: list[str] = []

        def receive() -> None:
            try:
                self._receive()
                received.append(time.perf_counter())
            except Exception as e:
                failed.append(f"{type(e).__name__}: {str(e)[:200]}")

        thread = threading.Thread(target=receive, daemon=True)
        thread.start()
        time.sleep(0.05)  # let the receive reach the endpoint and start waiting
        started = time.perf_counter()
        try:
            self.sqs.send_message(QueueUrl=self.url, MessageBody="{}")
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
        thread.join(timeout=30)
        if received:
            self.waiting_ms.append((received[0] - started) * 1000)
        else:
            self.errors += failed or ["the waiting receiver got nothing within 30 s"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sqs.delete_queue(QueueUrl=self.url)


# --- the run -----------------------------------------------------------------------------------------


def _create_project(rest: httpx.Client, timeout: float = 120) -> str:
    response = rest.post("/jobs", json={"type": "create-project", "params": {"name": unique_name("build")}})
    if response.status_code != 202:
        raise RuntimeError(f"create-project: POST /jobs answered {response.status_code}: {response.text[:300]}")
    job = response.json()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = rest.get(f"/jobs/{job['jobId']}").json()
        if current["status"] == "SUCCEEDED":
            return job["projectId"]
        if current["status"] != "RUNNING":
            raise RuntimeError(f"create-project ended {current['status']}: {current.get('error')}")
        time.sleep(0.05)
    raise TimeoutError(f"create-project {job['jobId']} still RUNNING after {timeout:.0f} s")


def _has_first_line(m: dict[str, Any]) -> bool:
    return m.get("type") == "job.log" and FIRST_LINE in m.get("lines", [])


@dataclass
class _Dispatch:
    ms: list[float] = field(default_factory=list)
    # Where the time went, per build (ms), from the events' own `at` stamps (millisecond precision).
    phases: dict[str, list[float]] = field(default_factory=dict)
    finished_ms: list[float] = field(default_factory=list)  # POST → job.finished received
    warmup: str = ""

    def add_phases(self, f: Followed, first_at: float, first_received: float) -> None:
        marks = [
            ("POST answered", f.answered),
            ("→ prepare STARTED", f.step_at("prepare", "STARTED")),
            ("→ prepare SUCCEEDED", f.step_at("prepare", "SUCCEEDED")),
            ("→ build STARTED (queue, worker)", f.step_at("build", "STARTED")),
            ("→ first job.log written (process, shipper)", first_at),
            ("→ received (push)", first_received),
        ]
        previous = f.posted
        for name, mark in marks:
            if mark is None:
                return
            self.phases.setdefault(name, []).append((mark - previous) * 1000)
            previous = mark


def _dispatch_build(watcher: Watcher, rest: httpx.Client, project_id: str, s: Settings) -> tuple[Followed, str | None]:
    body = {"type": "build", "projectId": project_id, "params": {"command": DISPATCH_COMMAND}}
    f = watcher.follow(rest, body, s.build_timeout, "dispatch")
    return f, f.describe_failure() or (None if f.first(_has_first_line) else f"job {f.job_id}: no '{FIRST_LINE}'")


def _measure_dispatch(
    watcher: Watcher, rest: httpx.Client, project_id: str, s: Settings, sqs: SqsBaseline, errors: list[str], say: Any
) -> _Dispatch:
    out = _Dispatch()
    warm, problem = _dispatch_build(watcher, rest, project_id, s)
    first = warm.first(_has_first_line)
    out.warmup = (
        f"warm-up build (the cloud's first, left out): {(first[1] - warm.posted) * 1000:.0f} ms to the first line"
        if first
        else f"warm-up build failed: {problem}"
    )
    for i in range(s.dispatch_builds):
        if i % 10 == 0:
            say(f"build: dispatch builds {i + 1}-{min(i + 10, s.dispatch_builds)} of {s.dispatch_builds}")
        f, problem = _dispatch_build(watcher, rest, project_id, s)
        first = f.first(_has_first_line)
        if first is not None:
            out.ms.append((first[1] - f.posted) * 1000)
            out.add_phases(f, parse_time(first[0]["at"]), first[1])
        done = f.first(lambda m: m.get("type") == "job.finished")
        if done is not None:
            out.finished_ms.append((done[1] - f.posted) * 1000)
        if problem:
            errors.append(problem)
        for _ in range(s.sqs_per_build):
            sqs.sequential()
        sqs.waiting()
    return out


@dataclass
class _Logs:
    ms: list[float] = field(default_factory=list)
    to_written_ms: list[float] = field(default_factory=list)  # line's stamp → its event's `at`
    to_received_ms: list[float] = field(default_factory=list)  # event's `at` → received
    lines_per_event: list[int] = field(default_factory=list)
    expected: int = 0
    events_per_build: list[int] = field(default_factory=list)
    span_s: list[float] = field(default_factory=list)  # first line's stamp → last line's, per build
    first_wait_ms: list[float] = field(default_factory=list)  # first line's stamp → its event written, per build


def _measure_logs(watcher: Watcher, rest: httpx.Client, project_id: str, s: Settings, errors: list[str]) -> _Logs:
    out = _Logs()
    timeout = s.build_timeout + s.log_lines * (s.log_interval + 0.1)
    body = {"type": "build", "projectId": project_id, "params": {"command": s.log_command()}}
    for _ in range(s.log_builds):
        out.expected += s.log_lines
        f = watcher.follow(rest, body, timeout, "log")
        if problem := f.describe_failure():
            errors.append(problem)
        stamps: list[float] = []
        for line, event, received in f.lines():
            stamp = STAMP.match(line)
            if stamp is None:
                continue
            written = float(stamp.group(1))
            if not stamps:
                out.first_wait_ms.append((parse_time(event["at"]) - written) * 1000)
            stamps.append(written)
            out.ms.append((received - written) * 1000)
            out.to_written_ms.append((parse_time(event["at"]) - written) * 1000)
            out.to_received_ms.append((received - parse_time(event["at"])) * 1000)
        out.lines_per_event += [len(m["lines"]) for m, _ in f.events if m.get("type") == "job.log"]
        out.events_per_build.append(sum(1 for m, _ in f.events if m.get("type") == "job.log"))
        if stamps:
            out.span_s.append(stamps[-1] - stamps[0])
    return out


@dataclass
class _Cache:
    cold_s: list[float] = field(default_factory=list)
    warm_s: list[float] = field(default_factory=list)
    cold_duration_ms: list[float] = field(default_factory=list)
    warm_duration_ms: list[float] = field(default_factory=list)
    cold_worker_ms: list[float] = field(default_factory=list)  # build STARTED → SUCCEEDED: the worker's part
    warm_worker_ms: list[float] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)  # what build.sh said, cold / warm
    # POST → build STARTED, build STARTED → build SUCCEEDED, → job.finished received (ms), per build
    phases: dict[str, list[float]] = field(default_factory=dict)


def _scaffold_build(watcher: Watcher, rest: httpx.Client, project_id: str, s: Settings, kind: str, out: _Cache,
                    errors: list[str]) -> tuple[float, float, float] | None:  # fmt: skip
    f = watcher.follow(rest, {"type": "build", "projectId": project_id, "params": {}}, s.build_timeout, f"{kind} cache")
    if problem := f.describe_failure():
        errors.append(f"{kind} scaffold build: {problem}")
        return None
    done = f.first(lambda m: m.get("type") == "job.finished")
    assert done is not None
    summary = next((SCAFFOLD_SUMMARY.search(line) for line, _, _ in f.lines() if SCAFFOLD_SUMMARY.search(line)), None)
    out.summaries.append(f"{summary.group(1)}+{summary.group(2)}" if summary else "?")
    started, succeeded = f.step_at("build", "STARTED"), f.step_at("build", "SUCCEEDED")
    if started is not None and succeeded is not None:
        steps = {
            f"{kind}: POST → build STARTED": started - f.posted,
            f"{kind}: build STARTED → SUCCEEDED (command, artifacts)": succeeded - started,
            f"{kind}: build SUCCEEDED → job.finished received": done[1] - succeeded,
        }
        for name, seconds in steps.items():
            out.phases.setdefault(name, []).append(seconds * 1000)
    worker_ms = (succeeded - started) * 1000 if started is not None and succeeded is not None else NAN
    return done[1] - f.posted, float(done[0]["result"]["durationMs"]), worker_ms


def _measure_cache(watcher: Watcher, rest: httpx.Client, s: Settings, errors: list[str], say: Any) -> _Cache:
    out = _Cache()
    for i in range(s.cache_projects):
        say(f"build: warm cache, fresh project {i + 1}/{s.cache_projects}")
        project_id = _create_project(rest)
        watcher.subscribe(project_id)
        try:
            cold = _scaffold_build(watcher, rest, project_id, s, "cold", out, errors)
            warm = _scaffold_build(watcher, rest, project_id, s, "warm", out, errors)
        finally:
            watcher.unsubscribe(project_id)
        if cold is None or warm is None:
            continue  # a pair or nothing: the ratio compares builds of the same project
        out.cold_s.append(cold[0])
        out.cold_duration_ms.append(cold[1])
        out.warm_s.append(warm[0])
        out.warm_duration_ms.append(warm[1])
        out.cold_worker_ms.append(cold[2])
        out.warm_worker_ms.append(warm[2])
    return out


def _retry_text(kind: str, f: Followed) -> str:
    started = f.step_at("build", "STARTED")
    when = f"{started - f.posted:.1f} s after POST" if started is not None else "never"
    return f"{kind} build {f.job_id}: attempt {f.attempts()} STARTED {when}"


def _ms_list(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _medians(phases: dict[str, list[float]]) -> str:
    return "; ".join(f"{name} {median(values):.0f} (max {max(values):.0f})" for name, values in phases.items())


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("builds")
    errors: list[str] = []
    rest = cloud.rest(USER)
    sqs = SqsBaseline(cloud)
    watcher: Watcher | None = None
    try:
        say("build: creating the project of the latency builds")
        project_id = _create_project(rest)
        watcher = Watcher(cloud)
        watcher.subscribe(project_id)
        dispatch = _measure_dispatch(watcher, rest, project_id, s, sqs, errors, say)
        say(f"build: {s.log_builds} builds of {s.log_lines} time-stamped lines")
        logs = _measure_logs(watcher, rest, project_id, s, errors)
        watcher.unsubscribe(project_id)
        cache = _measure_cache(watcher, rest, s, errors, say)
    finally:
        sqs.close()
        if watcher is not None:
            watcher.ws.close()
        try:
            quiet = cloud.wait_jobs_done({USER: rest}, timeout=120)
        except Exception as e:  # a diagnostic: the figures stand without it
            quiet = Quiet()
            errors.append(f"waiting for the builds to finish: {type(e).__name__}: {e}")
        rest.close()

    base = sqs.sequential_ms
    base_p50, base_p99 = [percentile(base, 50)], [percentile(base, 99)]
    n, lines = len(dispatch.ms), len(logs.ms)
    section.rows = [
        Row(f"Build dispatch p50: POST → first job.log line received ({n} builds, one at a time)", "ms",
            [percentile(dispatch.ms, 50)], base_p50, SQS_LABEL),
        Row(f"Build dispatch p99: POST → first job.log line received ({n} builds, one at a time)", "ms",
            [percentile(dispatch.ms, 99)], base_p99, SQS_LABEL, target="< 1000 ms", check=lambda v, _b: v < 1000),
        Row(f"Build log latency p50: line's own timestamp → received ({lines} lines, {s.log_builds} builds)", "ms",
            [percentile(logs.ms, 50)], base_p50, SQS_LABEL),
        Row(f"Build log latency p99: line's own timestamp → received ({lines} lines, {s.log_builds} builds)", "ms",
            [percentile(logs.ms, 99)], base_p99, SQS_LABEL, target="< 1000 ms", check=lambda v, _b: v < 1000),
        Row("Scaffold build, POST → job.finished: 2nd build (warm cache) vs 1st (cold), per fresh project", "s",
            cache.warm_s, cache.cold_s, "1st build, cold cache", digits=2),
        Row("Scaffold build, the worker's part (build STARTED → SUCCEEDED: command, artifact upload): warm vs cold",
            "ms", cache.warm_worker_ms, cache.cold_worker_ms, "1st build, cold cache", digits=0),
        Row("Scaffold build command's own time (result durationMs): warm vs cold", "ms",
            cache.warm_duration_ms, cache.cold_duration_ms, "1st build, cold cache", digits=0),
    ]  # fmt: skip

    section.notes.append(
        f"dispatch: `{DISPATCH_COMMAND}` on a project made by create-project, WebSocket subscribed to the project "
        f"before each POST; {n} of {s.dispatch_builds} builds measured; min {fmt(min(dispatch.ms, default=NAN), 0)}, "
        f"max {fmt(max(dispatch.ms, default=NAN), 0)} ms; slowest: {_ms_list(sorted(dispatch.ms)[-5:])} ms; "
        f"{dispatch.warmup}"
    )
    if dispatch.phases:
        section.notes.append(
            "dispatch, where the time goes (median and max ms per step, from the events' `at` stamps, ms precision): "
            + _medians(dispatch.phases)
            + f"; POST → job.finished received: median {median(dispatch.finished_ms):.0f} ms. For `echo` the step "
            "`process, shipper` is mostly the worker's 0.1 s check for the process's end: the line goes out when the "
            "shipper is closed after it (a build that keeps running sends its first line on the shipper's 0.2 s timer)"
        )
    section.notes.append(
        f"baseline: {len(base)} SQS SendMessage + ReceiveMessage (WaitTimeSeconds=20, message already there) "
        f"round trips on a fresh queue of the same endpoint, {s.sqs_per_build} after each dispatch build; "
        f"p50 {fmt(percentile(base, 50))} / p99 {fmt(percentile(base, 99))} ms. With the receiver already waiting "
        f"in its long poll, as a worker waits ({len(sqs.waiting_ms)} round trips): p50 "
        f"{fmt(percentile(sqs.waiting_ms, 50))} / p99 {fmt(percentile(sqs.waiting_ms, 99))} ms"
    )
    if logs.ms:
        section.notes.append(
            f"log latency: {lines} of {logs.expected} time-stamped lines received (a line every {s.log_interval} s; "
            f"`date +%s.%N` per line); the line's stamp → its job.log event written: p50 "
            f"{fmt(percentile(logs.to_written_ms, 50))} / p99 {fmt(percentile(logs.to_written_ms, 99))} ms (the "
            f"shipper's 0.2 s batching and the CloudWatch Logs put that precedes the publish); written → received: "
            f"p50 {fmt(percentile(logs.to_received_ms, 50))} / p99 {fmt(percentile(logs.to_received_ms, 99))} ms; "
            f"lines per job.log event: median {fmt(median(logs.lines_per_event), 0)}, "
            f"max {max(logs.lines_per_event, default=0)}; job.log events per build {logs.events_per_build} over "
            f"{', '.join(f'{x:.1f}' for x in logs.span_s)} s of output; the first line's wait for its event: "
            f"{_ms_list(logs.first_wait_ms)} ms"
        )
    if logs.first_wait_ms and max(logs.first_wait_ms) > 1000:
        section.notes.append(
            "**the live log is not streamed**: lines reach the user when the build ends (or every 24 KiB), not every "
            "0.2 s. `LogShipper.write` (handlers/workers/build/logs.py) wakes the sending thread only when a batch "
            "reaches 24 KiB, and that thread waits without a timeout while no line is pending, so the 0.2 s timer "
            "never starts; `close()` at the build's end sends everything. The dispatch figure does not show it "
            "because `echo` ends at once and the close sends its line; the first line of a build that keeps running "
            "would wait for its end"
        )
    if cache.cold_s:
        pairs = zip(cache.summaries[0::2], cache.summaries[1::2], strict=False)
        section.notes.append(
            f"warm cache: {len(cache.cold_s)} of {s.cache_projects} fresh projects built twice with no command "
            f"(`sh build.sh`); cold/warm POST → job.finished {_ms_list([x * 1000 for x in cache.cold_s])} / "
            f"{_ms_list([x * 1000 for x in cache.warm_s])} ms; durationMs cold {_ms_list(cache.cold_duration_ms)}, "
            f"warm {_ms_list(cache.warm_duration_ms)}; build.sh's own count (compressed+from the cache), cold/warm: "
            + ", ".join(f"{c}/{w}" for c, w in pairs)
        )
        section.notes.append("scaffold builds, median and max ms per step: " + _medians(cache.phases))
        section.notes.append(
            "why warm ≈ cold: the scaffold has two small files in src/, so the cache saves two `gzip -9` of a few "
            "hundred bytes (a few ms) out of a job whose time is Step Functions, the Prepare Lambda, the queue, the "
            "worker's log stream and event writes, the artifact upload and the notify step. The first build also "
            "creates the project's CloudWatch log group (the second finds it). And durationMs has a resolution of "
            "about 100 ms: the worker checks whether the process ended every 0.1 s (a build that ends before the "
            "first check, like `echo`, reads a few ms), so both builds of the scaffold read about 100 ms"
        )
    if watcher is not None:
        retried = [(kind, f) for kind, f in watcher.followed if f.attempts() > 1]
        if retried:
            examples = "; ".join(_retry_text(kind, f) for kind, f in retried[:5])
            section.notes.append(
                f"**{len(retried)} of {len(watcher.followed)} builds ran only at a later attempt** (the first "
                f"attempt's queue message was taken by no worker that ran it, and the task's heartbeat timeout "
                f"queued the build again): {examples}"
            )
        else:
            section.notes.append(f"every one of the {len(watcher.followed)} builds ran at its first attempt")
    section.notes.append(quiet.note())
    if watcher is not None and watcher.reconnects:
        section.notes.append(f"the WebSocket dropped and was reopened {watcher.reconnects} times")
    if sqs.errors:
        section.notes.append(f"SQS baseline errors: {len(sqs.errors)} — first: {sqs.errors[0]}")
    if errors:
        section.notes.append(f"FAILED: {len(errors)} builds went wrong — first: {errors[0]}")
    elif not dispatch.ms or not logs.ms or not cache.cold_s:
        section.notes.append("FAILED: a figure has no samples")
    else:
        section.notes.append("errors: 0")
    return section
