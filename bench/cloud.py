"""One ``longrun local up`` for the whole run, started exactly as a user starts it.

It runs as a subprocess on free ports with a temporary data directory and is stopped with
SIGTERM at the end, like the test suite's fixture (``tests/conftest.py``). Besides the endpoints,
this module knows how to wait for the machine to be quiet again: every accepted create-project
job really runs, so a benchmark must let the jobs of one round finish before it measures the next.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import httpx
from botocore.config import Config
from websockets.sync.client import ClientConnection, connect

from longrun.tokens import make_token

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# A benchmark must see failures, not have them hidden by the SDK's retries.
_AWS_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=50, read_timeout=120)


def _moto_part(command: str) -> str:
    """Which moto process a command line is (longrun.local.cloud starts three, each with its own options)."""
    if "--integrations-url" in command:
        return "moto: Step Functions engine"
    if "--dynamodb-url" in command:
        return "moto: AWS endpoint (S3, SQS, SSM, Logs, EventBridge)"
    return "moto: DynamoDB"


class CloudError(RuntimeError):
    """The local cloud did not start."""


@dataclass
class Quiet:
    """How waiting for a round's jobs to finish went."""

    seconds: float = 0.0
    stuck: list[dict[str, Any]] = field(default_factory=list)  # RUNNING, though their execution ended
    timed_out: int = 0  # users who still had a job running when the wait gave up

    def extend(self, other: Quiet) -> None:
        self.seconds += other.seconds
        self.stuck += other.stuck
        self.timed_out += other.timed_out

    def note(self) -> str:
        text = f"waiting for the jobs to finish took {self.seconds:.0f} s"
        if self.stuck:
            by_status: dict[str, int] = {}
            for job in self.stuck:
                by_status[job["executionStatus"]] = by_status.get(job["executionStatus"], 0) + 1
            text += (
                f"; **{len(self.stuck)} jobs stuck RUNNING although their execution ended** "
                f"(executions {by_status}; e.g. job {self.stuck[0]['jobId']})"
            )
        if self.timed_out:
            text += f"; **gave up waiting on {self.timed_out} users with jobs still RUNNING**"
        return text


def cores() -> int:
    """The cores this process may run on: the machine's capacity that every figure shares."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_time(text: str) -> float:
    """An ISO 8601 timestamp as longrun writes it (``...T00:55:22.047Z``) in epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Cloud:
    api: str
    ws: str
    aws: str
    workdir: Path
    process: subprocess.Popen[bytes]
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The fault counts (longrun.local.faults) as the cloud wrote them when it stopped.
    faults_at_stop: dict[str, Any] = field(default_factory=dict)
    # The Step Functions engine's own endpoint (its own moto process): where the functions' calls go.
    stepfunctions: str = ""

    # --- start and stop ---------------------------------------------------------------------

    @classmethod
    def start(cls, timeout: float = 180, extra_args: tuple[str, ...] = ()) -> Cloud:
        """``extra_args`` go to ``longrun local up`` as they are: ``("--faults", "lambda.throttle=0.1")``."""
        workdir = Path(tempfile.mkdtemp(prefix="longrun-bench-"))
        endpoints_file = workdir / "endpoints.json"
        log = open(workdir / "local-up.log", "wb")  # noqa: SIM115 - the child writes to it until it stops
        process = subprocess.Popen(
            [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", "0", "--ws-port", "0",
             "--aws-port", "0", "--data-dir", str(workdir / "data"), "--endpoints-file", str(endpoints_file),
             *extra_args],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while not endpoints_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise CloudError("longrun local up did not start:\n" + (workdir / "local-up.log").read_text()[-4000:])
            time.sleep(0.1)
        endpoints = json.loads(endpoints_file.read_text())
        return cls(endpoints["api"], endpoints["ws"], endpoints["aws"], workdir, process,
                   stepfunctions=endpoints.get("stepfunctions", ""))  # fmt: skip

    def stop(self, keep: bool = False) -> float:
        """SIGTERM, as Ctrl-C would; returns how long the local cloud took to stop."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        took = time.monotonic() - started
        self.faults_at_stop = self.fault_counts()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return took

    def fault_counts(self) -> dict[str, Any]:
        """``{"rates", "seed", "injected": {name: n}, "draws": {name: n}}`` so far; empty without --faults."""
        from longrun.local.faults import read_counts

        return read_counts(self.workdir / "data")

    # --- clients ----------------------------------------------------------------------------

    def token(self, user: str) -> str:
        with self._lock:
            if user not in self._tokens:
                self._tokens[user] = make_token(user, ttl=6 * 3600)
            return self._tokens[user]

    def rest(self, user: str) -> httpx.Client:
        """A keep-alive HTTP client of the REST API for ``user``, as one API client would hold it."""
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.token(user)}"}, timeout=120)

    def websocket(self, user: str) -> ClientConnection:
        return connect(f"{self.ws}?token={quote(self.token(user))}", open_timeout=30, compression=None)

    def aws_client(self, service: str) -> Any:
        """A boto3 client of the local AWS endpoint (moto): what the baselines call directly.

        Step Functions calls go to the engine's own endpoint, as the functions' do
        (``AWS_ENDPOINT_URL_SFN``): a bare StartExecution is the same call the API Lambda makes.
        """
        return boto3.session.Session().client(
            service,
            endpoint_url=self.stepfunctions if service == "stepfunctions" and self.stepfunctions else self.aws,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=_AWS_CONFIG,
        )

    # --- waiting for quiet ------------------------------------------------------------------

    def wait_jobs_done(self, clients: dict[str, httpx.Client], timeout: float = 300) -> Quiet:
        """Until none of these users has a RUNNING job, or every one left is stuck.

        A job is stuck when its execution has ended and the job is still RUNNING: the notify step
        writes the final status before the execution can end, so that write was lost, and waiting
        longer would not change it. Users are checked in order and a cycle stops at the first that
        still has a job running, so waiting adds about one API call a second to the load rather
        than one per user.
        """
        sfn = self.aws_client("stepfunctions")
        quiet = Quiet()
        stuck_ids: set[str] = set()
        checked: dict[str, float] = {}
        pending = list(clients)
        started = time.monotonic()
        while pending:
            user = pending[0]
            response = clients[user].get("/jobs", params={"status": "RUNNING", "limit": 100})
            running = response.json()["items"] if response.status_code == 200 else None
            if running is not None:
                for job in running:
                    if job["jobId"] in stuck_ids or time.monotonic() - checked.get(job["jobId"], 0) < 5:
                        continue
                    checked[job["jobId"]] = time.monotonic()
                    status = sfn.describe_execution(executionArn=job["executionArn"])["status"]
                    again = clients[user].get(f"/jobs/{job['jobId']}").json()
                    if status != "RUNNING" and again["status"] == "RUNNING":
                        stuck_ids.add(job["jobId"])
                        quiet.stuck.append({**again, "executionStatus": status})
                if all(job["jobId"] in stuck_ids for job in running):
                    pending.pop(0)
                    continue
            if time.monotonic() - started > timeout:
                quiet.timed_out = len(pending)
                break
            time.sleep(0.5)
        quiet.seconds = time.monotonic() - started
        return quiet

    def wait_executions_done(self, machine_arn: str, timeout: float = 600) -> None:
        sfn = self.aws_client("stepfunctions")
        deadline = time.monotonic() + timeout
        while sfn.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING", maxResults=1)["executions"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"executions of {machine_arn} still RUNNING after {timeout:.0f} s")
            time.sleep(0.2)

    # --- the state the figures were measured in ---------------------------------------------

    def table_rows(self) -> dict[str, int]:
        """Rows per DynamoDB table: moto's cost of some calls grows with them, so reports show them."""
        ddb = self.aws_client("dynamodb")
        counts: dict[str, int] = {}
        for name in ddb.list_tables()["TableNames"]:
            short = name.split("-")[1] if name.count("-") >= 2 else name
            total, kwargs = 0, {"TableName": name, "Select": "COUNT"}
            while True:
                page = ddb.scan(**kwargs)
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            counts[short] = total
        return counts

    def write_probe(self, samples: int = 7) -> tuple[float, float]:
        """Median ms of a no-op ``TransactWriteItems`` on the jobs and events tables, and of a ``GetItem``.

        Every job event is written in such a transaction, and moto copies each table a transaction
        names before it applies it, so this cost grows with the rows. The probe writes nothing: a
        condition check and a delete of keys that do not exist.
        """
        ddb = self.aws_client("dynamodb")
        names = ddb.list_tables()["TableNames"]
        jobs = next(n for n in names if "-JobsTable-" in n)
        events = next(n for n in names if "-JobEventsTable-" in n)
        missing = {"S": "bench-no-such-job"}
        transaction = [
            {"ConditionCheck": {"TableName": jobs, "Key": {"jobId": missing},
                                "ConditionExpression": "attribute_not_exists(jobId)"}},
            {"Delete": {"TableName": events, "Key": {"jobId": missing, "seq": {"N": "0"}}}},
        ]  # fmt: skip
        tx: list[float] = []
        get: list[float] = []
        for _ in range(samples):
            started = time.perf_counter()
            ddb.transact_write_items(TransactItems=transaction)
            tx.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            ddb.get_item(TableName=jobs, Key={"jobId": missing})
            get.append((time.perf_counter() - started) * 1000)
        return sorted(tx)[len(tx) // 2], sorted(get)[len(get) // 2]

    def state_note(self) -> str:
        rows = self.table_rows()
        text = "tables: " + (", ".join(f"{k} {v}" for k, v in sorted(rows.items()) if v) or "empty")
        try:
            tx, get = self.write_probe()
            text += f"; moto TransactWriteItems (jobs + events tables, no-op) {tx:.1f} ms vs GetItem {get:.1f} ms"
        except Exception as e:  # a diagnostic only: never fail the run for it
            text += f"; write probe failed: {type(e).__name__}: {e}"
        moto = self.moto_usage()
        if moto:
            text += f"; moto processes {moto[0]:.0f} MiB RSS, {moto[1]:.0f} s CPU so far"
        return text

    def moto_usage(self) -> tuple[float, float] | None:
        """(RSS in MiB, CPU seconds) of the moto processes together (AWS endpoint, DynamoDB, engine), from /proc."""
        total_rss = total_cpu = 0.0
        found = False
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            for pid in children:
                if b"longrun.local.aws_server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    rss = next(
                        int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("VmRSS:")
                    )  # fmt: skip
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total_cpu += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
                    total_rss += rss / 1024
                    found = True
        except (OSError, StopIteration, ValueError, IndexError):
            return None
        return (total_rss, total_cpu) if found else None

    def cpu_by_part(self) -> dict[str, float]:
        """CPU seconds so far of each part of the local cloud, from /proc (empty elsewhere).

        Parts: the three moto processes (the Step Functions engine; DynamoDB; the AWS endpoint with
        S3, SQS, SSM, Logs, EventBridge), the Lambda workers (with the programs they ran, such as
        git), the build workers, and ``longrun local up`` itself (the REST and WebSocket fronts, the
        control plane). Comparing them says which part a job's time goes to.
        """
        ticks = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        usage: dict[int, tuple[float, float, str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(stat[1])
            own = (int(stat[11]) + int(stat[12])) / ticks
            reaped = (int(stat[13]) + int(stat[14])) / ticks
            usage[pid] = (own, reaped, command)
        parts: dict[str, float] = {}
        for pid, (own, reaped, command) in usage.items():
            ancestor = pid
            while ancestor not in (0, 1, self.process.pid):
                ancestor = parents.get(ancestor, 0)
            if ancestor != self.process.pid:
                continue
            if pid == self.process.pid:
                part, seconds = "local up (fronts, control plane)", own
            elif "longrun.local.aws_server" in command:
                part, seconds = _moto_part(command), own
            elif "longrun.local.awslambda.worker" in command:
                part, seconds = "Lambda workers", own + reaped
            elif "workers.build" in command:
                part, seconds = "build workers", own + reaped
            else:
                continue  # a worker's child: counted in its worker once reaped
            parts[part] = parts.get(part, 0.0) + seconds
        return parts
