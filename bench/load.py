"""Load: 500 jobs of every kind from 50 concurrent clients, each with its WebSocket, and nothing lost.

Each client is a user of its own with one keep-alive REST connection and one WebSocket. It makes
a project (``create-project``, subscribed by job), subscribes to that project, and then runs its
share of ``git-clone`` (from a git server on 127.0.0.1), ``sync`` and ``build`` jobs on it, one
after the other (one workspace: a project runs one git or sync job at a time), each timed from
its ``POST /jobs`` to the ``job.finished`` received over the WebSocket. The 50 clients run at
once. When all are done, every job is checked as a user would check it:

* it reached exactly one final status (``GET /jobs/{id}``);
* its events (``GET /jobs/{id}/events``) are ``seq`` 1, 2, … without a gap, with one
  ``job.finished``, the last;
* its client's WebSocket received its ``job.finished`` exactly once (the project subscription
  was made before the job was posted, so no subscription race can repeat it).

A job that breaks any of these is *lost*; the figure that matters is that count, 0. Jobs per
second run from the first POST to the last ``job.finished``; the baseline is the same number of
bare executions of a three-Pass state machine, started by as many concurrent clients, each
waiting for its execution to end, on the same engine in the same run.

With ``faults``, the same load runs on a local cloud of its own started with ``--faults``
(Lambda throttles and errors, WebSocket connections gone, DynamoDB throttles, build workers
killed): a client whose WebSocket goes away reconnects, subscribes again and fills the gap from
``GET /jobs/{id}/events``, as the contract says a client does; a job may then end ``FAILED`` when
a fault outlasts its retries, but never twice and never not at all.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from bench import machines
from bench.calls import unique_name
from bench.cloud import Cloud
from bench.report import Row, Section
from bench.stats import percentile
from tests.support.git_server import GitServer, make_repository

FINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"})
# After its project, each client cycles through these kinds.
CYCLE = ("git-clone", "sync", "build")


def _get(rest: httpx.Client, path: str, attempts: int = 30) -> dict[str, Any]:
    """A read, repeated as a client repeats one after a throttle or a 5xx (faults make those)."""
    for attempt in range(attempts):
        answer = rest.get(path)
        if answer.status_code == 200:
            return answer.json()
        if answer.status_code not in (429, 500, 502, 503, 504) or attempt == attempts - 1:
            raise RuntimeError(f"GET {path} answered {answer.status_code}: {answer.text[:200]}")
        time.sleep(min(1.0, 0.05 * 2**attempt))
    raise AssertionError("unreachable")


@dataclass
class Settings:
    jobs: int = 500
    clients: int = 50
    baseline_states: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(jobs=40, clients=10)


@dataclass
class Job:
    job_id: str
    kind: str
    posted: float
    finished_at: float | None = None  # when its job.finished was received
    finished_seen: int = 0  # job.finished messages received for it (distinct deliveries)


@dataclass
class Client:
    """One user: its REST connection, its WebSocket (reconnected if it goes away), its jobs."""

    cloud: Cloud
    user: str
    rest: httpx.Client
    jobs: list[Job] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reconnects: int = 0
    project: str | None = None
    ws: ClientConnection | None = None
    seen: set[tuple[str, int]] = field(default_factory=set)  # (jobId, seq) of every event received

    def connect(self, attempts: int = 10) -> None:
        """Open the WebSocket (again), as a client does when a handshake is refused: with backoff."""
        for attempt in range(attempts):
            try:
                self.ws = self.cloud.websocket(self.user)
                break
            except Exception:  # refused at $connect (a throttled or failed authorizer), or reset
                if attempt == attempts - 1:
                    raise
                time.sleep(min(2.0, 0.1 * 2**attempt))
        if self.project:
            self.subscribe(projectId=self.project)
        for job in self.jobs:  # a gap left by the connection that went away: filled over REST
            if job.finished_at is None:
                self.subscribe(jobId=job.job_id)
                self.fill(job)

    def subscribe(self, **target: str) -> None:
        assert self.ws is not None
        # Gone already: the next receive reconnects, and reconnecting subscribes again.
        with contextlib.suppress(ConnectionClosed):
            self.ws.send(json.dumps({"action": "subscribe", **target}))

    def fill(self, job: Job) -> None:
        for event in _get(self.rest, f"/jobs/{job.job_id}/events")["items"]:
            self.take(event)

    def take(self, event: dict[str, Any]) -> None:
        key = (str(event.get("jobId")), int(event.get("seq", 0)))
        if event.get("type") != "job.finished" or key in self.seen:
            self.seen.add(key)
            return
        self.seen.add(key)
        for job in self.jobs:
            if job.job_id == key[0]:
                job.finished_seen += 1
                job.finished_at = job.finished_at or time.time()

    def wait(self, job: Job, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while job.finished_at is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job.kind} {job.job_id}: no job.finished in {timeout:.0f} s")
            try:
                assert self.ws is not None
                self.take(json.loads(self.ws.recv(timeout=5)))
            except TimeoutError:
                self.fill(job)  # a quiet connection: the REST API has every event too
            except ConnectionClosed:
                self.reconnects += 1
                self.connect()

    def post(self, kind: str, params: dict[str, Any]) -> Job:
        body: dict[str, Any] = {"type": kind, "params": params}
        if self.project:
            body["projectId"] = self.project
        # One key per job: a POST repeated after a 5xx or a throttle gets the same job, never two.
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        posted = time.time()
        for _ in range(20):
            answer = self.rest.post("/jobs", json=body, headers=headers)
            if answer.status_code == 202:
                job = Job(answer.json()["jobId"], kind, posted)
                if all(j.job_id != job.job_id for j in self.jobs):
                    self.jobs.append(job)
                return job
            if answer.status_code in (429, 500, 502, 503, 504):  # throttled or failed: try again shortly
                time.sleep(float(answer.headers.get("Retry-After", "0.5")))
                continue
            raise RuntimeError(f"POST {kind} answered {answer.status_code}: {answer.text[:200]}")
        raise RuntimeError(f"POST {kind} throttled 20 times")


def _params(kind: str, repo_url: str) -> dict[str, Any]:
    return {
        "git-clone": {"repoUrl": repo_url, "depth": 1},
        "sync": {},
        # A second of work: a build worker that dies (worker.kill, drawn per second of a running
        # build) must have something to die in.
        "build": {"command": "sleep 1 && echo built"},
    }[kind]


def _run_client(client: Client, count: int, repo_url: str, start: threading.Barrier) -> None:
    try:
        start.wait()  # first, so that a client that fails cannot hold the others at the barrier
        client.connect()
        first = client.post("create-project", {"name": unique_name("load")})
        client.subscribe(jobId=first.job_id)
        client.wait(first)
        record = _get(client.rest, f"/jobs/{first.job_id}")
        if record["status"] != "SUCCEEDED":
            raise RuntimeError(f"its project could not be made: {record.get('error')}")
        client.project = record["projectId"]
        client.subscribe(projectId=client.project)
        for i in range(count - 1):
            kind = CYCLE[i % len(CYCLE)]
            client.wait(client.post(kind, _params(kind, repo_url)))
    except Exception as e:  # reported; the jobs it made are still checked
        client.errors.append(f"{type(e).__name__}: {str(e)[:300]}")
    finally:
        if client.ws is not None:
            client.ws.close()


@dataclass
class Outcome:
    jobs: int = 0
    lost: list[str] = field(default_factory=list)  # "<jobId>: why"
    statuses: dict[str, int] = field(default_factory=dict)
    errors_by_code: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    by_kind_ms: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    client_errors: list[str] = field(default_factory=list)
    reconnects: int = 0


def _check(client: Client, out: Outcome) -> None:
    for job in client.jobs:
        out.jobs += 1
        record = _get(client.rest, f"/jobs/{job.job_id}")
        events = _get(client.rest, f"/jobs/{job.job_id}/events")["items"]
        status = record.get("status")
        out.statuses[status] = out.statuses.get(status, 0) + 1
        if status != "SUCCEEDED":
            code = (record.get("error") or {}).get("code", "?")
            out.errors_by_code[code] = out.errors_by_code.get(code, 0) + 1
        seqs = [e["seq"] for e in events]
        finished = [e for e in events if e["type"] == "job.finished"]
        why = []
        if status not in FINAL:
            why.append(f"status {status}")
        if seqs != list(range(1, len(seqs) + 1)):
            why.append(f"seq not contiguous: {seqs[:20]}")
        if len(finished) != 1 or (events and events[-1]["type"] != "job.finished"):
            why.append(f"{len(finished)} job.finished in its events")
        if job.finished_seen != 1:
            why.append(f"its WebSocket got job.finished {job.finished_seen} times")
        if why:
            out.lost.append(f"{job.kind} {job.job_id}: " + "; ".join(why))
        elif job.finished_at is not None:
            took = (job.finished_at - job.posted) * 1000
            out.latencies_ms.append(took)
            out.by_kind_ms.setdefault(job.kind, []).append(took)


def run_load(cloud: Cloud, s: Settings, repo_url: str, tag: str) -> Outcome:
    per_client = max(2, s.jobs // s.clients)
    start = threading.Barrier(s.clients)
    clients = [Client(cloud, f"load-{tag}-{i}", cloud.rest(f"load-{tag}-{i}")) for i in range(s.clients)]
    threads = [threading.Thread(target=_run_client, args=(c, per_client, repo_url, start)) for c in clients]
    return _measure(clients, threads)


def _measure(clients: list[Client], threads: list[threading.Thread]) -> Outcome:
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = Outcome()
    last = max((j.finished_at for c in clients for j in c.jobs if j.finished_at), default=time.time())
    out.seconds = last - began
    for client in clients:
        _check(client, out)
        out.client_errors += client.errors
        out.reconnects += client.reconnects
        client.rest.close()
    return out


def run_bare(cloud: Cloud, s: Settings) -> tuple[float, list[float]]:
    """As many bare executions of a no-op machine, from as many concurrent clients: (per second, latencies)."""
    machine = machines.create(cloud, s.baseline_states)
    per_client = max(2, s.jobs // s.clients)
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(s.clients)

    def client(i: int) -> None:
        sfn = cloud.aws_client("stepfunctions")
        start.wait()
        for n in range(per_client):
            began = time.time()
            arn = sfn.start_execution(stateMachineArn=machine, name=f"load-bare-{i}-{n}", input="{}")["executionArn"]
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                time.sleep(0.005)
            with lock:
                latencies.append((time.time() - began) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(s.clients)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.time() - began), latencies


def _rows(label: str, out: Outcome, bare_rate: float, bare_ms: list[float], faulted: bool = False) -> list[Row]:
    rate = out.jobs / out.seconds if out.seconds else 0.0
    ok = out.statuses.get("SUCCEEDED", 0)
    base = "bare 3-Pass executions, same clients"
    return [
        Row(f"{label}: jobs per second ({out.jobs} jobs of 4 kinds)", "jobs/s", [rate], [bare_rate], base, digits=2),
        Row(f"{label}: end-to-end p50 (POST → job.finished received)", "ms", [percentile(out.latencies_ms, 50)],
            [percentile(bare_ms, 50)], base, digits=0),
        Row(f"{label}: end-to-end p99", "ms", [percentile(out.latencies_ms, 99)], [percentile(bare_ms, 99)], base,
            digits=0),
        Row(f"{label}: jobs lost (no final status, not exactly one job.finished, a seq gap)", "", [len(out.lost)],
            target="0", check=lambda v, _b: v == 0, longrun_text=str(len(out.lost)), digits=0),
    ] + ([] if faulted else [
        # Without faults nothing may fail: builds queue for the default workers (BuildQueueTimeoutSeconds).
        Row(f"{label}: jobs SUCCEEDED", "", [float(ok)], target=f"all {out.jobs}", check=lambda v, _b: v >= out.jobs,
            longrun_text=f"{ok}/{out.jobs}", digits=0),
    ])  # fmt: skip


def _notes(label: str, out: Outcome) -> list[str]:
    notes = [
        f"{label}: {out.jobs} jobs in {out.seconds:.1f} s; statuses {out.statuses}; errors of the jobs that did not "
        f"succeed {out.errors_by_code or '{}'}; WebSocket reconnects {out.reconnects}",
        f"{label}: p50 / p99 by kind: "
        + ", ".join(
            f"{kind} {percentile(ms, 50):.0f} / {percentile(ms, 99):.0f} ms ({len(ms)})"
            for kind, ms in sorted(out.by_kind_ms.items())
        ),
    ]
    if out.lost:
        notes.append(f"{label}: LOST {len(out.lost)} — first: {out.lost[:3]}")
    if out.client_errors:
        notes.append(f"{label}: client errors {len(out.client_errors)} — first: {out.client_errors[:2]}")
    return notes


def run(cloud: Cloud, s: Settings, say: Callable[[str], None], faults: str | None = None) -> Section:
    section = Section("load" + (" under faults" if faults else ""))
    workdir = Path(tempfile.mkdtemp(prefix="longrun-bench-load-"))
    server = None
    try:
        make_repository(workdir, "app.git", {"README.md": "load\n", "src/index.js": "console.log(1)\n"})
        server = GitServer(workdir)
        repo_url = f"{server.url}/app.git"
        # Warm-up, not measured: every function's execution environments started (8 each at most),
        # as a deployment that has been serving has them.
        warm = Settings(jobs=4 * min(10, s.clients), clients=min(10, s.clients))
        say(f"load: warm-up, {warm.jobs} jobs from {warm.clients} clients")
        warmed = run_load(cloud, warm, repo_url, "w" + ("f" if faults else "n"))
        section.notes.append(
            f"warm-up (not measured): {warmed.jobs} jobs in {warmed.seconds:.1f} s, lost {len(warmed.lost)}"
        )
        say(f"load: {s.jobs} jobs from {s.clients} clients" + (f" under faults {faults}" if faults else ""))
        out = run_load(cloud, s, repo_url, "f" if faults else "n")
        say("load: the same number of bare executions, for the baseline")
        bare_rate, bare_ms = run_bare(cloud, s)
        label = "Load under faults" if faults else "Load"
        section.rows = _rows(label, out, bare_rate, bare_ms, faulted=bool(faults))
        section.notes += _notes(label, out)
        if faults:
            counts = cloud.fault_counts()
            section.notes.append(
                f"faults: {faults} (seed {counts.get('seed')}); injected: {counts.get('injected', {})} "
                f"of draws {counts.get('draws', {})}"
            )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return section
