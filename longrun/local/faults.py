"""Fault injection for the local cloud: ``longrun local up --faults SPEC [--faults-seed N]``.

A benchmark or a test asks the local cloud to misbehave the way AWS sometimes does, at given
rates, to prove that nothing is lost when it does. Each fault is presented as AWS presents it, by
the part of the local cloud that emulates that service, so the handlers and workflows see nothing
they would not see on AWS:

``lambda.throttle``
    an Invoke (from Step Functions, an event source mapping, EventBridge, API Gateway) answers
    ``429 TooManyRequestsException`` before the function runs. Unit: each invocation.
``lambda.error``
    an Invoke answers ``500 ServiceException``: the Lambda service failing, not the function.
    Unit: each invocation not already throttled.
``ws.gone``
    a ``POST @connections/{id}`` to a live connection answers ``410 GoneException`` and the
    WebSocket front closes that connection (the client sees it go away). Unit: each post.
``dynamodb.throttle``
    a DynamoDB request answers ``400 ProvisionedThroughputExceededException`` before moto sees
    it. Unit: each request.
``worker.kill``
    a build worker (an ECS task) is killed with ``SIGKILL``, its build with it. Unit: each
    second a worker spends running a build, so an idle pool is never shot at and a rate of
    0.1 kills a 10-second build about once in 1.5 builds.

Faults start once the cloud is up (its own setup is never failed) and each fault draws from a
``random.Random`` of its own, seeded from ``--faults-seed`` and its name: a run with the same
seed and the same traffic injects the same faults. Every injected fault is counted; the counts
are written to ``<data-dir>/faults.json`` every second and at stop, so a benchmark can say how
many of each it survived.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

NAMES = ("lambda.throttle", "lambda.error", "ws.gone", "dynamodb.throttle", "worker.kill")
# The example: the rates bench/load.py's run under faults uses unless told otherwise.
EXAMPLE_SPEC = "lambda.throttle=0.1,lambda.error=0.05,ws.gone=0.1,dynamodb.throttle=0.05,worker.kill=0.02"
USAGE = "name=rate,... with names " + ", ".join(NAMES) + " and rates from 0 to 1"
COUNTS_FILE = "faults.json"


class FaultSpecError(ValueError):
    """A ``--faults`` value that names an unknown fault or a rate outside [0, 1]."""


def parse(spec: str) -> dict[str, float]:
    """``"lambda.throttle=0.1,ws.gone=0.2"`` → ``{"lambda.throttle": 0.1, "ws.gone": 0.2}``.

    Refuses anything else rather than guess: a typo in a fault name would otherwise make a run
    that proves nothing look like one that survived faults.
    """
    rates: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise FaultSpecError(f"{part!r}: expected name=rate ({USAGE})")
        if name not in NAMES:
            raise FaultSpecError(f"unknown fault {name!r} ({USAGE})")
        if name in rates:
            raise FaultSpecError(f"{name} is given twice")
        try:
            rate = float(value)
        except ValueError:
            raise FaultSpecError(f"{name}: rate {value.strip()!r} is not a number ({USAGE})") from None
        if not 0.0 <= rate <= 1.0:  # also refuses nan
            raise FaultSpecError(f"{name}: rate {value.strip()} is outside [0, 1]")
        rates[name] = rate
    if not rates:
        raise FaultSpecError(f"no faults given ({USAGE})")
    return rates


def to_spec(rates: dict[str, float]) -> str:
    """The ``--faults`` value that :func:`parse` reads back as ``rates``."""
    return ",".join(f"{name}={rate!r}" for name, rate in rates.items())


class Faults:
    """The rates of one process's faults, their seeded draws and their counts.

    Disarmed until :meth:`arm`: the local cloud builds its stack first, with no faults.
    """

    def __init__(self, rates: dict[str, float] | None = None, seed: int = 0) -> None:
        self.rates = {name: rate for name, rate in (rates or {}).items() if rate > 0}
        self.seed = seed
        self._random = {name: random.Random(f"{seed}:{name}") for name in self.rates}
        self.injected = dict.fromkeys(self.rates, 0)
        self.draws = dict.fromkeys(self.rates, 0)
        self._lock = threading.Lock()
        self._armed = threading.Event()

    def __bool__(self) -> bool:
        return bool(self.rates)

    def arm(self) -> None:
        self._armed.set()

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    def strike(self, name: str) -> bool:
        """Whether this occasion of ``name`` fails; counted when it does."""
        rate = self.rates.get(name)
        if rate is None or not self._armed.is_set():
            return False
        with self._lock:
            self.draws[name] += 1
            hit = self._random[name].random() < rate
            if hit:
                self.injected[name] += 1
        return hit

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.seed,
                "rates": dict(self.rates),
                "injected": dict(self.injected),
                "draws": dict(self.draws),
            }


def merge(*snapshots: dict[str, Any]) -> dict[str, Any]:
    """One report of several processes' snapshots: counts add up, rates and seed are shared."""
    report: dict[str, Any] = {"seed": 0, "rates": {}, "injected": {}, "draws": {}}
    for snapshot in snapshots:
        report["seed"] = snapshot.get("seed", report["seed"])
        report["rates"].update(snapshot.get("rates", {}))
        for key in ("injected", "draws"):
            for name, count in snapshot.get(key, {}).items():
                report[key][name] = report[key].get(name, 0) + count
    for name in report["rates"]:
        report["injected"].setdefault(name, 0)
        report["draws"].setdefault(name, 0)
    return report


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Replace ``path`` at once, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


def read_counts(data_dir: Path) -> dict[str, Any]:
    """What ``<data-dir>/faults.json`` says now (empty if no faults were asked for)."""
    path = Path(data_dir) / COUNTS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class Reporter:
    """Writes the merged counts of this process and of its helpers' part files, every second and at stop."""

    def __init__(self, faults: Faults, path: Path, parts: list[Path], interval: float = 1.0) -> None:
        self.faults, self.path, self.parts, self.interval = faults, path, parts, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-counts", daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def write(self) -> None:
        snapshots = [self.faults.snapshot()]
        for part in self.parts:
            try:
                snapshots.append(json.loads(part.read_text()))
            except (OSError, ValueError):
                continue
        write_json(self.path, merge(*snapshots))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.write()
