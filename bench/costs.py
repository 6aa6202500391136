"""What each job kind uses of what AWS bills, counted on a local cloud of its own, and what 1,000 jobs cost.

    python -m bench --only costs      # as a section of the benchmarks' report
    python -m bench.costs [--quick]   # alone: the tables on stdout (docs/deploy.md shows them)

Each kind (create-project, git-merge, git-clone, sync of a few uploaded files, build) runs a few
times, one job at a time on a quiet cloud, the way a client runs it: ``POST /jobs`` (for the sync,
``POST /projects/{id}/uploads`` and a ``PUT`` to each pre-signed URL), a WebSocket connection of its
own subscribed to the project, ``job.finished``, disconnect. What happened in between is counted as
AWS meters it:

* **Step Functions** (Standard): state transitions from ``GetExecutionHistory`` of every execution
  the job started — every state entered, and each retry once more ("You are charged for the total
  number of state transitions across all your state machines, including retries",
  https://aws.amazon.com/step-functions/pricing/); a Distributed Map's child executions add one
  each, with their own states (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html).
* **Lambda**: requests and GB-seconds from the ``REPORT`` lines the local Lambda runtime writes per
  invocation (billed duration times memory size), as Lambda writes them to CloudWatch Logs.
* **DynamoDB, SQS, EventBridge, S3, CloudWatch Logs**: the local AWS endpoint's request counts
  (``GET /_longrun/usage``, :mod:`longrun.local.usage`); DynamoDB's request units are an estimate
  from the sizes on the wire (it errs high), each write to a table counted once more per global
  secondary index; SQS receives that returned nothing are the pollers' idle cost, not a job's.
* **API Gateway**: REST requests the client made; WebSocket messages (those it received and sent)
  and connection minutes (the connection's lifetime, rounded up to the minute).

Durations are this machine's, not Lambda's: a local worker process runs on a shared core, where a
256 MB function on Lambda gets about a seventh of a vCPU. The GB-seconds are an indication, the counts
are exact. The calls this script makes itself (listing executions, reading histories) are taken out.
Prices: :data:`PRICES`, each with the page it was read from.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from bench.calls import unique_name
from bench.cloud import Cloud
from bench.completion import until
from bench.report import Section

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "infra" / "template.yaml"
USER = "bench-costs"
KINDS = ("create-project", "git-merge", "git-clone", "sync", "build")

# AWS's prices in US East (N. Virginia), read on 2026-12-01 from archived copies of the pages named
# (the machine that wrote this could not reach aws.amazon.com); each with the page it comes from.
# The DynamoDB on-demand prices (halved on 2024-11-01) were read from secondary write-ups of that
# page, the Fargate ARM prices likewise. A price that could not be found is None, printed as
# "not found", never guessed.
PRICES_READ_ON = "2026-12-01"
PRICES: dict[str, dict[str, Any]] = {
    "sfn_transition": {"usd": 0.025 / 1000, "unit": "state transition (Standard)",
                       "url": "https://aws.amazon.com/step-functions/pricing/"},
    "lambda_request": {"usd": 0.20 / 1e6, "unit": "request", "url": "https://aws.amazon.com/lambda/pricing/"},
    "lambda_gb_s_arm": {"usd": 0.0000133334, "unit": "GB-second (arm64, first 7.5 billion)",
                        "url": "https://aws.amazon.com/lambda/pricing/"},
    "ddb_wru": {"usd": 0.625 / 1e6, "unit": "write request unit (on-demand, since 2024-11-01)",
                "url": "https://aws.amazon.com/dynamodb/pricing/on-demand/"},
    "ddb_rru": {"usd": 0.125 / 1e6, "unit": "read request unit (on-demand, since 2024-11-01)",
                "url": "https://aws.amazon.com/dynamodb/pricing/on-demand/"},
    "sqs_request": {"usd": 0.40 / 1e6, "unit": "request (standard queue, per 64 KB chunk)",
                    "url": "https://aws.amazon.com/sqs/pricing/"},
    "events_custom": {"usd": 1.00 / 1e6, "unit": "custom event published (per 64 KB chunk)",
                      "url": "https://aws.amazon.com/eventbridge/pricing/"},
    "apigw_rest": {"usd": 3.50 / 1e6, "unit": "REST API call (first 333 million)",
                   "url": "https://aws.amazon.com/api-gateway/pricing/"},
    "apigw_ws_message": {"usd": 1.00 / 1e6, "unit": "WebSocket message (per 32 KB, first billion)",
                         "url": "https://aws.amazon.com/api-gateway/pricing/"},
    "apigw_ws_minute": {"usd": 0.25 / 1e6, "unit": "WebSocket connection minute",
                        "url": "https://aws.amazon.com/api-gateway/pricing/"},
    "s3_put": {"usd": 0.005 / 1000, "unit": "S3 Standard PUT, COPY, POST or LIST request",
               "url": "https://aws.amazon.com/s3/pricing/"},
    "s3_get": {"usd": 0.0004 / 1000, "unit": "S3 Standard GET and other request (DELETE is free)",
               "url": "https://aws.amazon.com/s3/pricing/"},
    "logs_ingest_gb": {"usd": 0.50, "unit": "GB of CloudWatch Logs ingested (standard class)",
                       "url": "https://aws.amazon.com/cloudwatch/pricing/"},
    "fargate_vcpu_hour_arm": {"usd": 0.03238, "unit": "Fargate vCPU-hour (Linux/ARM)",
                              "url": "https://aws.amazon.com/fargate/pricing/"},
    "fargate_gb_hour_arm": {"usd": 0.00356, "unit": "Fargate GB-hour (Linux/ARM)",
                            "url": "https://aws.amazon.com/fargate/pricing/"},
    "nat_hour": {"usd": 0.045, "unit": "NAT gateway hour (plus $0.045 per GB processed)",
                 "url": "https://aws.amazon.com/vpc/pricing/"},
    "ipv4_hour": {"usd": 0.005, "unit": "public IPv4 address hour (the NAT gateway's Elastic IP)",
                  "url": "https://aws.amazon.com/vpc/pricing/"},
    "efs_standard_gb_month": {"usd": 0.30, "unit": "EFS Standard GB-month",
                              "url": "https://aws.amazon.com/efs/pricing/"},
    "logs_storage_gb_month": {"usd": 0.03, "unit": "CloudWatch Logs GB-month stored",
                              "url": "https://aws.amazon.com/cloudwatch/pricing/"},
    "cw_alarm": {"usd": 0.10, "unit": "standard-resolution alarm metric, a month",
                 "url": "https://aws.amazon.com/cloudwatch/pricing/"},
    "cw_dashboard": {"usd": 3.00, "unit": "custom dashboard, a month (the first 3 are free)",
                     "url": "https://aws.amazon.com/cloudwatch/pricing/"},
    "xray_trace": {"usd": None, "unit": "X-Ray trace recorded", "url": "https://aws.amazon.com/xray/pricing/"},
}  # fmt: skip
HOURS_PER_MONTH = 730
_REPORT = re.compile(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: (?P<billed>\d+) ms"
                     r"\tMemory Size: (?P<memory>\d+) MB")  # fmt: skip
# Functions that run on a schedule whatever the jobs do: an idle cost (the idle table), not a job's.
_SCHEDULED = ("Sweeper",)


@dataclass
class Settings:
    rounds: int = 3
    files: int = 5  # files of one upload burst: the sync of a few files

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1)


@dataclass
class Counted:
    """What one job used, by price key (plus a few counts priced by none, such as Lambda requests per function)."""

    units: dict[str, float] = field(default_factory=dict)
    status: str = ""
    lambda_by_function: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, amount: float) -> None:
        self.units[key] = self.units.get(key, 0.0) + amount


# --- the counters -------------------------------------------------------------------------------


class _SelfCalls:
    """The AWS calls this script makes itself, counted by a boto3 hook, to be taken out of the endpoint's counts."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def hook(self, client: Any) -> Any:
        service = client.meta.service_model.signing_name

        def count(model: Any, **_: Any) -> None:
            key = f"{service} {model.name}"
            self.calls[key] = self.calls.get(key, 0) + 1

        client.meta.events.register("before-call", lambda model, **kw: count(model, **kw))
        return client


def _usage(cloud: Cloud) -> dict[str, Any]:
    return httpx.get(f"{cloud.aws}/_longrun/usage", timeout=30).json()


def _log_offsets(logs: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in logs.glob("*.log")}


def _reports(logs: Path, since: dict[Path, int]) -> list[tuple[str, int, int]]:
    """(function, billed ms, memory MB) of every REPORT line written after ``since``."""
    out = []
    for path in logs.glob("*.log"):
        with open(path, "rb") as f:
            f.seek(since.get(path, 0))
            for line in f.read().decode(errors="replace").splitlines():
                match = _REPORT.match(line)
                if match:
                    out.append((path.stem, int(match["billed"]), int(match["memory"])))
    return out


def _function_logs(logs: Path) -> list[Path]:
    """The functions' log files (those with Lambda's REPORT lines), not the local cloud's own logs."""
    return [path for path in logs.glob("*.log") if b"REPORT RequestId: " in path.read_bytes()]


def _function_log_bytes(logs: Path, since: dict[Path, int]) -> int:
    """Bytes the functions logged (their CloudWatch Logs ingestion), Lambda's own lines included."""
    return sum(path.stat().st_size - since.get(path, 0) for path in _function_logs(logs))


def _transitions(sfn: Any, execution_arn: str) -> int:
    """States entered, plus one per retry (a task scheduled again within the same state)."""
    transitions, scheduled = 0, 0
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            kind = event["type"]
            if kind.endswith("StateEntered"):
                transitions += 1
                scheduled = 0
            elif kind in ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"):
                scheduled += 1
                if scheduled > 1:
                    transitions += 1
    return transitions


def _executions_since(sfn: Any, since: datetime) -> list[str]:
    arns = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
            arns += [e["executionArn"] for e in page["executions"] if e["startDate"] >= since]
    return arns


def _child_executions(sfn: Any, execution_arn: str) -> list[str]:
    """A Distributed Map's child executions (each is billed one transition more, plus its own states)."""
    try:
        runs = sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
    except Exception:  # an engine without map runs has no children to count
        return []
    children = []
    for run in runs:
        children += [e["executionArn"] for e in sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"]]
    return children


def _gsi_counts(ddb: Any) -> dict[str, int]:
    return {
        name: len(ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", []))
        for name in ddb.list_tables()["TableNames"]
    }


def _subtract(after: dict[str, int], before: dict[str, int], own: dict[str, int]) -> dict[str, int]:
    return {k: n for k in after if (n := after[k] - before.get(k, 0) - own.get(k, 0)) > 0}


# --- one job, counted ----------------------------------------------------------------------------


@dataclass
class _Meter:
    cloud: Cloud
    self_calls: _SelfCalls
    gsi: dict[str, int]

    def __post_init__(self) -> None:
        self.sfn = self.self_calls.hook(self.cloud.aws_client("stepfunctions"))
        self.logs = self.cloud.workdir / "data" / "logs"

    def quiet(self, timeout: float = 120) -> None:
        """Until no execution runs and no function has logged for 2 s: the job's aftermath is counted too."""
        deadline = time.monotonic() + timeout
        last, still = -1, 0.0
        while time.monotonic() < deadline:
            size = sum(p.stat().st_size for p in _function_logs(self.logs))
            running = any(
                self.sfn.list_executions(stateMachineArn=m["stateMachineArn"], statusFilter="RUNNING")["executions"]
                for m in self.sfn.list_state_machines()["stateMachines"]
            )
            if size == last and not running:
                if time.monotonic() - still >= 2:
                    return
            else:
                last, still = size, time.monotonic()
            time.sleep(0.5)

    def count(self, job: Callable[[Counted], None]) -> Counted:
        self.quiet()
        counted = Counted()
        since = datetime.now(UTC)
        offsets = _log_offsets(self.logs)
        before_own = dict(self.self_calls.calls)
        before = _usage(self.cloud)
        job(counted)
        self.quiet()
        after = _usage(self.cloud)
        own = _subtract(self.self_calls.calls, before_own, {})
        calls = _subtract(after["calls"], before["calls"], own)
        reports = [r for r in _reports(self.logs, offsets) if not any(s in r[0] for s in _SCHEDULED)]
        counted.add("lambda_request", len(reports))
        counted.add("lambda_gb_s_arm", sum(billed / 1000 * memory / 1024 for _, billed, memory in reports))
        for function, _, _ in reports:
            short = function.split("-")[1] if function.count("-") >= 2 else function
            counted.lambda_by_function[short] = counted.lambda_by_function.get(short, 0) + 1
        log_bytes = _function_log_bytes(self.logs, offsets)
        counted.add("logs_ingest_gb", log_bytes / 1024**3)
        for arn in _executions_since(self.sfn, since):
            counted.add("sfn_transition", _transitions(self.sfn, arn))
            for child in _child_executions(self.sfn, arn):
                counted.add("sfn_transition", 1 + _transitions(self.sfn, child))
        for key, n in calls.items():
            service, _, operation = key.partition(" ")
            if service == "sqs" and not operation.endswith("(empty)"):
                counted.add("sqs_request", n)
            elif service == "events" and operation == "PutEvents":
                counted.add("events_custom", n)  # one entry per PutEvents here (handlers put one event a call)
            elif service == "s3" and operation in ("PutObject", "CopyObject", "ListObjects", "POST (multipart, other)"):
                counted.add("s3_put", n)
            elif service == "s3" and operation not in ("DeleteObject", "DeleteObjects"):
                counted.add("s3_get", n)
            elif service == "logs" and operation == "PutLogEvents":
                counted.units.setdefault("logs PutLogEvents (build log)", 0)
                counted.add("logs PutLogEvents (build log)", n)
        for table, units in after["dynamodb"].items():
            was = before["dynamodb"].get(table, {"read": 0.0, "write": 0.0})
            counted.add("ddb_wru", (units["write"] - was["write"]) * (1 + self.gsi.get(table, 0)))
            counted.add("ddb_rru", units["read"] - was["read"])
        return counted


# --- the jobs, as a client runs them -------------------------------------------------------------


class _Client:
    """REST calls and one WebSocket connection per job, each counted as API Gateway bills them."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.rest = cloud.rest(USER)

    def call(self, counted: Counted, method: str, path: str, **kwargs: Any) -> httpx.Response:
        counted.add("apigw_rest", 1)
        return self.rest.request(method, path, **kwargs)

    def job(self, counted: Counted, project_id: str | None, start: Callable[[Counted], str | None]) -> str | None:
        """Connect, subscribe to the project, ``start`` the job, read until its ``job.finished``; its project id."""
        opened = time.monotonic()
        received = sent = 0
        with self.cloud.websocket(USER) as ws:
            if project_id:
                ws.send(json.dumps({"action": "subscribe", "projectId": project_id}))
                sent += 1
            job_id = start(counted)
            if not project_id:  # a new project: follow the job itself
                ws.send(json.dumps({"action": "subscribe", "jobId": job_id}))
                sent += 1

            def finished(message: dict[str, Any]) -> bool:
                nonlocal received
                received += 1
                return message.get("type") == "job.finished" and (job_id is None or message.get("jobId") == job_id)

            message, _ = until(ws, finished, 600)
            counted.status = message["status"]
        counted.add("apigw_ws_message", received + sent)
        counted.add("apigw_ws_minute", math.ceil((time.monotonic() - opened) / 60))
        return job_id

    def post_job(self, counted: Counted, body: dict[str, Any]) -> dict[str, Any]:
        response = self.call(counted, "POST", "/jobs", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:300]}")
        return response.json()


def _create_project(client: _Client) -> str:
    """A project for the other kinds (not counted), once its create-project job has finished."""
    scratch = Counted()
    box: dict[str, str] = {}

    def start(counted: Counted) -> str:
        job = client.post_job(counted, {"type": "create-project", "params": {"name": unique_name("cost")}})
        box["project"] = job["projectId"]
        return job["jobId"]

    client.job(scratch, None, start)
    if scratch.status != "SUCCEEDED":
        raise RuntimeError(f"the project for the cost runs ended {scratch.status}")
    return box["project"]


def _runner(kind: str, client: _Client, repo_url: str, s: Settings, project_id: str) -> Callable[[Counted], None]:
    """The body of one job of ``kind``: what a client does, with a fresh project where the kind needs one."""

    def run(counted: Counted) -> None:
        if kind == "create-project":
            body = {"type": "create-project", "params": {"name": unique_name("cost")}}
            client.job(counted, None, lambda c: client.post_job(c, body)["jobId"])
            return
        if kind == "sync":
            client.job(counted, project_id, lambda c: _upload(client, c, project_id, s.files))
            return
        params = {
            "git-merge": {"source": "develop", "target": "main", "strategy": "merge"},
            "git-clone": {"repoUrl": repo_url},
            "build": {"command": "true"},
        }[kind]
        body = {"type": kind, "projectId": project_id, "params": params}
        client.job(counted, project_id, lambda c: client.post_job(c, body)["jobId"])

    return run


def _upload(client: _Client, counted: Counted, project_id: str, files: int) -> None:
    """A burst of small files, each to its pre-signed URL; the sync they start is the job (its id is not known)."""
    for i in range(files):
        path = f"cost/{uuid.uuid4().hex[:8]}-{i}.txt"
        body = f"file {i}\n".encode()
        response = client.call(counted, "POST", f"/projects/{quote(project_id, safe='')}/uploads",
                               json={"path": path, "contentType": "text/plain", "size": len(body)})  # fmt: skip
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST uploads answered {response.status_code}: {response.text[:300]}")
        grant = response.json()
        put = httpx.put(grant["url"], content=body, headers=grant.get("headers", {}), timeout=30)
        if put.status_code != 200:
            raise RuntimeError(f"the PUT to the upload URL answered {put.status_code}")
    return None


# --- the report ---------------------------------------------------------------------------------


def _money(usd: float) -> str:
    return f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def _price_text(key: str) -> str:
    price = PRICES[key]["usd"]
    if price is None:
        return "not found"
    if price < 0.001:
        return f"${_trim(price * 1e6, 4)} per million"
    return f"${_trim(price, 5)}"


def _trim(value: float, digits: int) -> str:
    """At most ``digits`` decimals, at least two: $0.625, $0.20, $0.03238."""
    text = f"{value:,.{digits}f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def kind_table(kind: str, runs: list[Counted]) -> tuple[list[str], float]:
    """A Markdown table of one kind: each count per job (median of the runs), its price, per 1,000 jobs."""
    keys = [k for k in PRICES if any(k in r.units for r in runs)]
    lines = [f"**{kind}** ({len(runs)} jobs: {', '.join(r.status or '?' for r in runs)})", "",
             "| what AWS bills | per job | price | per 1,000 jobs |", "|---|---|---|---|"]  # fmt: skip
    total = 0.0
    for key in keys:
        per_job = median(r.units.get(key, 0.0) for r in runs)
        price = PRICES[key]["usd"]
        cost = per_job * 1000 * price if price is not None else float("nan")
        total += cost if price is not None else 0.0
        if key == "logs_ingest_gb":
            amount = f"{per_job * 1024**2:,.1f} KB"
        elif key == "lambda_gb_s_arm":
            amount = f"{per_job:,.3f}"
        else:
            amount = f"{per_job:,.1f}".removesuffix(".0")
        lines.append(f"| {PRICES[key]['unit']} | {amount} | {_price_text(key)} | "
                     f"{_money(cost) if price is not None else 'not priced'} |")  # fmt: skip
    lines.append(f"| **total** | | | **{_money(total)}** |")
    extra = sorted({k for r in runs for k in r.units if k not in PRICES})
    for key in extra:
        lines.append(f"| {key} (calls; priced by the log bytes above) | {median(r.units.get(key, 0) for r in runs):g} "
                     "| — | — |")  # fmt: skip
    by_function: dict[str, list[int]] = {}
    for r in runs:
        for name, n in r.lambda_by_function.items():
            by_function.setdefault(name, []).append(n)
    if by_function:
        lines += ["", "Lambda requests per job, by function: "
                  + ", ".join(f"{n} {max(v)}" for n, v in sorted(by_function.items()))]  # fmt: skip
    return lines, total


def _template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)


def idle_table(build_minutes: list[float]) -> list[str]:
    """What the stack costs a month with no job at all, and the build workers' Fargate cost per build minute."""
    resources = _template()["Resources"]
    task = next(r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition")["Properties"]
    vcpu, memory_gb = int(task["Cpu"]) / 1024, int(task["Memory"]) / 1024
    per_hour = vcpu * PRICES["fargate_vcpu_hour_arm"]["usd"] + memory_gb * PRICES["fargate_gb_hour_arm"]["usd"]
    alarms = sum(1 for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm")
    dashboards = sum(1 for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard")
    nat = (PRICES["nat_hour"]["usd"] + PRICES["ipv4_hour"]["usd"]) * HOURS_PER_MONTH
    lines = ["**idle, a month** (no job at all)", "", "| what | a month | how |", "|---|---|---|",
             f"| NAT gateway and its Elastic IP, 1 (default `NatGateways`) | {_money(nat)} | {HOURS_PER_MONTH} h x "
             f"(${PRICES['nat_hour']['usd']} + ${PRICES['ipv4_hour']['usd']}), plus $0.045 per GB it carries; "
             "2 gateways twice that ([docs/network.md](network.md)) |",
             f"| CloudWatch alarms ({alarms}) | {_money(alarms * PRICES['cw_alarm']['usd'])} | "
             f"${PRICES['cw_alarm']['usd']:.2f} each |",
             f"| CloudWatch dashboard ({dashboards}) | {_money(dashboards * PRICES['cw_dashboard']['usd'])} | "
             f"${PRICES['cw_dashboard']['usd']:.2f} each beyond the account's first 3 |",
             "| build workers (Fargate service at 0 tasks) | $0.00 | the service scales in to zero; "
             "a task costs only while it runs |",
             f"| EFS workspaces | ${PRICES['efs_standard_gb_month']['usd']:.2f} per GB stored | Standard class; "
             "none while empty |",
             f"| logs stored | ${PRICES['logs_storage_gb_month']['usd']:.2f} per GB-month | "
             "kept `LogRetentionDays` (30) |",
             "| SQS pollers of 3 event source mappings | about $0.78 | estimate: Lambda long-polls each queue "
             "with 5 pollers (about 3 empty receives a minute each, 648,000 a month a queue) at $0.40 per "
             "million; not measured |",
             "| sweeper (a scheduled function) | under $0.01 | a few invocations an hour |",
             "| DynamoDB, S3, Step Functions, API Gateway, Lambda at rest | $0.00 | on-demand: billed per request |",
             ""]  # fmt: skip
    minute = per_hour / 60
    lines += [f"**build workers**: a Fargate task of {vcpu:g} vCPU and {memory_gb:g} GB (the task definition) costs "
              f"${per_hour:.4f} an hour, ${minute:.5f} a build minute (billed per second, one minute at "
              "least per task started)."]  # fmt: skip
    if build_minutes:
        lines[-1] += f" The local builds took {median(build_minutes) * 60:.1f} s each."
    return lines


def prices_table() -> list[str]:
    lines = [f"Prices (US East, N. Virginia), read {PRICES_READ_ON}:", "", "| price | of | page |", "|---|---|---|"]
    for key, price in PRICES.items():
        lines.append(f"| {_price_text(key)} | {price['unit']} | {price['url']} |")
    return lines


# --- the run ------------------------------------------------------------------------------------


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    from tests.support.git_server import GitServer, make_repository

    section = Section("costs per job kind")
    self_calls = _SelfCalls()
    ddb = self_calls.hook(cloud.aws_client("dynamodb"))
    meter = _Meter(cloud, self_calls, _gsi_counts(ddb))
    client = _Client(cloud)
    root = Path(tempfile.mkdtemp(prefix="longrun-costs-git-"))
    make_repository(root, "origin.git", {"README.md": "origin\n", "src/a.txt": "a\n"}, branches=("develop",))
    server = GitServer(root)
    tables: list[str] = []
    totals: dict[str, float] = {}
    build_minutes: list[float] = []
    try:
        for kind in KINDS:
            runs = []
            for r in range(s.rounds):
                say(f"costs: {kind} {r + 1}/{s.rounds}")
                project_id = "" if kind == "create-project" else _create_project(client)
                body = _runner(kind, client, f"{server.url}/origin.git", s, project_id)
                started = time.monotonic()
                runs.append(meter.count(body))
                if kind == "build":
                    build_minutes.append((time.monotonic() - started) / 60)
            lines, totals[kind] = kind_table(kind, runs)
            tables += [*lines, ""]
            if any(r.status != "SUCCEEDED" for r in runs):
                section.notes.append(f"FAILED: {kind} ended {[r.status for r in runs]}")
    finally:
        server.stop()
    tables += [*idle_table(build_minutes), "", *prices_table()]
    section.notes.append("per 1,000 jobs: " + ", ".join(f"{k} {_money(v)}" for k, v in totals.items()))
    section.tables = tables
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one job of each kind")
    args = parser.parse_args(argv)
    cloud = Cloud.start()
    try:
        section = run(cloud, Settings.quick() if args.quick else Settings(), lambda m: print(m, file=sys.stderr))
    finally:
        cloud.stop()
    print("\n".join(section.tables))
    return 1 if any(n.startswith("FAILED") for n in section.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
