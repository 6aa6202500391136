"""Handler import time, the part of a Lambda cold start that the code controls.

Each handler module of the template is imported in a fresh interpreter, with the code directory
on ``PYTHONPATH`` and only the environment a module may read at import, and the import alone is
timed inside that interpreter (interpreter start-up is Lambda's cost, not ours). The baseline is
``import boto3`` timed the same way: what any Python Lambda that calls AWS pays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench.cloud import REGION, REPO
from bench.report import Row, Section
from bench.stats import fmt, median

MODULES = [
    "api.app",
    "api.authorizer",
    "websocket.connect",
    "websocket.default",
    "websocket.disconnect",
    "websocket.authorizer",
    "steps.project.reserve_name",
    "steps.project.write_scaffold",
    "steps.project.init_repository",
    "steps.project.record_project",
    "steps.project.undo",
    "steps.notify.notify",
]
BASELINE = "boto3"
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


@dataclass
class Settings:
    repeats: int = 5

    @classmethod
    def quick(cls) -> Settings:
        return cls(repeats=2)


def _env(tracing: bool = False) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO / "handlers"),
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "POWERTOOLS_SERVICE_NAME": "longrun",
        "POWERTOOLS_METRICS_NAMESPACE": "longrun",
    }


def import_ms(module: str, tracing: bool = False) -> float:
    """One import of ``module`` in a fresh interpreter, in ms (``tracing``: with X-Ray tracing on)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=REPO / "handlers",
        env=_env(tracing),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip().splitlines()[-1]) * 1000


def run(s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("handler import time")
    say("imports: timing each handler module")
    times: dict[str, list[float]] = {}
    failed: list[str] = []
    for module in [BASELINE, *MODULES]:
        try:
            import_ms(module)  # not timed: fills the page cache and the bytecode cache, as a deployed package has
            times[module] = [import_ms(module) for _ in range(s.repeats)]
        except RuntimeError as e:
            failed.append(str(e))
    measured = [m for m in MODULES if m in times]
    slowest = max(measured, key=lambda m: median(times[m])) if measured else None
    # The same module with X-Ray tracing on, as the template deploys it: the X-Ray SDK's import
    # builds a botocore client for its sampler (aws/aws-xray-sdk-python#311).
    traced = [import_ms(slowest, tracing=True) for _ in range(s.repeats)] if slowest else []
    section.rows = [
        Row(f"Handler import, slowest module ({slowest}), tracing off", "ms", times.get(slowest, []) if slowest else [],
            times.get(BASELINE, []), "import boto3", target="< 300 ms", check=lambda v, _b: v < 300, digits=0),
        Row(f"Handler import, {slowest}, X-Ray tracing on (the template's default)", "ms", traced,
            times.get(BASELINE, []), "import boto3", digits=0),
    ]  # fmt: skip
    section.notes.append(
        f"median of {s.repeats} fresh interpreters per module (per-round values above are the slowest module's): "
        + ", ".join(f"{m} {fmt(median(times[m]), 0)}" for m in sorted(measured, key=lambda m: -median(times[m])))
        + f" ms; {BASELINE} {fmt(median(times.get(BASELINE, [])), 0)} ms"
    )
    over = [m for m in measured if median(times[m]) >= 300]
    if over:
        section.notes.append(f"over 300 ms: {', '.join(over)}")
    if failed:
        section.notes.append("failed: " + "; ".join(failed))
    return section
