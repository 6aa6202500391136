"""Lambda for the local cloud: warm worker processes per function, and the Invoke API in front of them.

moto runs functions in Docker, which these machines do not have. Instead each function of the
template gets a pool of warm processes (:mod:`longrun.local.awslambda.worker`) started with that
function's handler, environment and code directory, the way Lambda keeps execution environments:
one invocation at a time per process, a new process when all are busy (a cold start), up to the
function's concurrency. A handler that runs past its ``Timeout`` has its process killed and the
caller gets ``Sandbox.Timedout``, as from Lambda.

Each invocation ends with the lines Lambda writes to the function's log group, in the function's
log file (``<data-dir>/logs/<function name>.log``): ``START``, ``END`` and ``REPORT RequestId: …
Duration: … ms Billed Duration: … ms Memory Size: … MB Max Memory Used: … MB`` (with ``Init
Duration`` after a cold start). What a job costs in Lambda is read from those lines
(``bench/costs.py``), as it is read from CloudWatch Logs on AWS
(https://docs.aws.amazon.com/lambda/latest/operatorguide/log-structure.html).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longrun.local.faults import Faults

log = logging.getLogger("longrun.local.lambda")


@dataclass
class FunctionSpec:
    """What the local runtime needs to know of one ``AWS::Lambda::Function``."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    timeout: float = 3.0
    memory: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    concurrency: int = 8
    # Scheduling niceness of its processes. On AWS a function behind API Gateway never waits for
    # CPU behind a workflow's steps; on two shared cores the local cloud asks the kernel for that.
    niceness: int = 0


@dataclass
class Outcome:
    """An invocation's result as Lambda's Invoke API returns it."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" when the handler raised or timed out
    duration_ms: float = 0.0


class Throttled(Exception):
    """Every execution environment of the function stayed busy past the wait: Lambda's 429."""


class ServiceFailure(Exception):
    """The Lambda service failed the Invoke itself (``500 ServiceException``); the function never ran."""


class _Worker:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], log_path: Path) -> None:
        self.spec = spec
        read_fd, write_fd = os.pipe()
        env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "LONGRUN_RESULT_FD": str(write_fd),
        }
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [
                *(["nice", "-n", str(spec.niceness)] if spec.niceness else []),
                sys.executable,
                "-m",
                "longrun.local.awslambda.worker",
            ],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.code_dir,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
        os.close(write_fd)
        self._results = os.fdopen(read_fd, "r")
        started = time.monotonic()
        first = self._read(deadline=time.monotonic() + 30)
        if first is None or not first.get("ready"):
            self.kill()
            raise RuntimeError(f"the execution environment of {spec.name} did not start; see {log_path}")
        # The INIT phase (interpreter and handler import), reported with the first invocation it served.
        self.init_ms: float | None = (time.monotonic() - started) * 1000

    def _read(self, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([self._results], [], [], remaining)
        if not ready:
            return None
        line = self._results.readline()
        if not line:
            raise EOFError("the execution environment exited")
        return json.loads(line)

    def invoke(self, request_id: str, event: Any, timeout: float) -> dict[str, Any] | None:
        deadline_wall_ms = int((time.time() + timeout) * 1000)
        assert self.process.stdin is not None
        self.process.stdin.write(
            (json.dumps({"id": request_id, "event": event, "deadline_ms": deadline_wall_ms}) + "\n").encode()
        )
        self.process.stdin.flush()
        return self._read(deadline=time.monotonic() + timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def max_memory_mb(self) -> int | None:
        """Peak resident memory of the environment (``VmHWM``), as REPORT's Max Memory Used; None off Linux."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
        except (OSError, ValueError, IndexError):
            return None
        return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        for f in (self._results, self._log):
            with contextlib.suppress(Exception):
                f.close()


class _FairSlots:
    """A counting semaphore that serves waiters in arrival order.

    ``threading.Semaphore`` wakes an arbitrary waiter, so under a burst some invocations starve
    while later ones run; a workflow step would then time out for no reason but bad luck.
    """

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            ticket = threading.Event()
            self._waiters.append(ticket)
        if ticket.wait(timeout):
            return True
        with self._lock:
            if ticket.is_set():  # handed over just as we gave up
                return True
            self._waiters.remove(ticket)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot goes straight to the longest waiter
            else:
                self._free += 1

    @property
    def waiting(self) -> int:
        return len(self._waiters)


class FunctionPool:
    """The execution environments of one function."""

    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], log_dir: Path) -> None:
        self.spec = spec
        self._base_env = base_env
        self._log_path = log_dir / f"{spec.name}.log"
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = _FairSlots(spec.concurrency)
        self.invocations = 0
        self.cold_starts = 0

    def warm(self) -> None:
        worker = self._start()
        worker.init_ms = None  # started ahead of any invocation: no invocation waited for its INIT
        with self._lock:
            self._idle.append(worker)

    def _log_lines(self, *lines: str) -> None:
        """Lambda's own lines for an invocation, appended to the function's log beside what the handler printed."""
        with contextlib.suppress(OSError), open(self._log_path, "a") as log_file:
            log_file.write("".join(line + "\n" for line in lines))

    def _report(self, request_id: str, worker: _Worker, duration_ms: float) -> None:
        """``END`` and ``REPORT`` as Lambda writes them once an invocation ends, its billed duration included.

        Lambda bills the duration rounded up to the next millisecond, and since 1 August 2025 the INIT
        phase of a cold start too, for managed runtimes as for the others
        (https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/).
        """
        init_ms, worker.init_ms = worker.init_ms, None
        billed = math.ceil(duration_ms + (init_ms or 0.0))
        memory = worker.max_memory_mb()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {self.spec.memory} MB\tMax Memory Used: {memory if memory is not None else 0} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        self._log_lines(f"END RequestId: {request_id}", report)

    def _start(self) -> _Worker:
        worker = _Worker(self.spec, self._base_env, self._log_path)
        with self._lock:
            self._all.append(worker)
            self.cold_starts += 1
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def invoke(self, event: Any, *, wait_for_slot: float = 60.0) -> Outcome:
        if not self._slots.acquire(timeout=wait_for_slot):
            raise Throttled(f"{self.spec.name}: all {self.spec.concurrency} execution environments stayed busy")
        try:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
                self.invocations += 1
            if worker is None or not worker.alive():
                worker = self._start()
            request_id = str(uuid.uuid4())
            self._log_lines(f"START RequestId: {request_id} Version: $LATEST")
            started = time.monotonic()
            try:
                answer = worker.invoke(request_id, event, self.spec.timeout)
            except (EOFError, BrokenPipeError, ValueError) as e:
                self._report(request_id, worker, (time.monotonic() - started) * 1000)
                self._retire(worker)
                return _error("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited ({e})")
            duration = (time.monotonic() - started) * 1000
            self._report(request_id, worker, duration)
            if answer is None:  # past the function's timeout: Lambda resets the environment
                self._retire(worker)
                return _error(
                    "Sandbox.Timedout",
                    f"RequestId: {request_id} Error: Task timed out after {self.spec.timeout:.2f} seconds",
                    duration,
                )
            with self._lock:
                self._idle.append(worker)
            if "error" in answer:
                return Outcome(json.dumps(answer["error"]).encode(), "Unhandled", duration)
            return Outcome(json.dumps(answer["payload"]).encode(), None, duration)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for worker in workers:
            worker.kill()


def _error(kind: str, message: str, duration: float = 0.0) -> Outcome:
    return Outcome(json.dumps({"errorType": kind, "errorMessage": message}).encode(), "Unhandled", duration)


class LambdaRuntime:
    """Every function of the stack, found by name or ARN."""

    def __init__(self, base_env: dict[str, str], log_dir: Path, faults: Faults | None = None) -> None:
        self._base_env = base_env
        self._log_dir = log_dir
        self._pools: dict[str, FunctionPool] = {}
        self.faults = faults or Faults()

    def add(self, spec: FunctionSpec) -> None:
        pool = FunctionPool(spec, self._base_env, self._log_dir)
        for key in (spec.name, spec.arn, spec.logical_id):
            self._pools[key] = pool

    def pool(self, function: str) -> FunctionPool | None:
        """``function`` as the Invoke API takes it: a name, an ARN, or either with a ``:qualifier``."""
        if function in self._pools:
            return self._pools[function]
        if function.startswith("arn:"):
            parts = function.split(":")
            return self._pools.get(":".join(parts[:7]))
        return self._pools.get(function.split(":")[0])

    def pools(self) -> list[FunctionPool]:
        return list({id(p): p for p in self._pools.values()}.values())

    def admit(self, function: str) -> None:
        """The Lambda service's own refusals of an Invoke, as ``--faults`` asks for them."""
        if self.faults.strike("lambda.throttle"):
            raise Throttled(f"Rate Exceeded. (injected fault: lambda.throttle on {function})")
        if self.faults.strike("lambda.error"):
            raise ServiceFailure(f"Lambda could not process the request (injected fault: lambda.error on {function})")

    def invoke(self, function: str, event: Any) -> Outcome:
        pool = self.pool(function)
        if pool is None:
            raise KeyError(function)
        self.admit(function)
        return pool.invoke(event)

    def close(self) -> None:
        for pool in self.pools():
            pool.close()
