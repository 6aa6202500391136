"""``longrun ops``: what an operator reads in the Step Functions console, from the command line.

* ``ops history JOB_ID``: the job's execution as a timeline of its states: when each was entered,
  how long it took, how many attempts its task made (its retries), and each error with its cause;
  then how the execution ended.
* ``ops list``: the stack's executions, newest first, by status and age.

Both use AWS directly (the standard environment, the stack's outputs), as ``longrun logs`` does.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from longrun.operator import OperatorError, client, job_item, stack_outputs

# History event types, by what they mean for the state being run.
_ATTEMPT = re.compile(r"^(LambdaFunction|Task|Activity)Scheduled$")
_FAILURE = re.compile(r"^(LambdaFunction|Task|Activity)(Failed|TimedOut|ScheduleFailed|StartFailed|SubmitFailed)$")
_EXECUTION_END = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}


@dataclass
class StateRun:
    """One entry into a state, as the console's table shows it."""

    name: str
    type: str
    entered: datetime
    exited: datetime | None = None
    attempts: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    ended_execution: bool = False  # the execution failed here: no Catch took the error
    redrive: int = 0  # 0 for the first attempt, N for the N-th redrive (POST /jobs/{id}/retry)

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def outcome(self) -> str:
        if self.exited is None:
            return "running"
        if self.type == "Fail" or self.ended_execution:
            return "failed"
        if self.errors and len(self.errors) >= self.attempts:
            return "caught"  # its last attempt failed and a Catch (or the end) took over
        return "succeeded"


@dataclass
class Timeline:
    execution_arn: str
    status: str
    started: datetime
    stopped: datetime | None
    states: list[StateRun]
    error: str | None = None
    cause: str | None = None
    redrives: list[datetime] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def stamp(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "executionArn": self.execution_arn,
            "status": self.status,
            "startedAt": stamp(self.started),
            "stoppedAt": stamp(self.stopped),
            "error": self.error,
            "cause": self.cause,
            "redrives": [stamp(moment) for moment in self.redrives],
            "states": [
                {
                    **{k: v for k, v in asdict(run).items() if k not in ("entered", "exited")},
                    "enteredAt": stamp(run.entered),
                    "exitedAt": stamp(run.exited),
                    "durationMs": _ms(run.entered, run.exited),
                    "retries": run.retries,
                    "outcome": run.outcome,
                }
                for run in self.states
            ],
        }


def _readable(cause: Any) -> str:
    """A cause as a person reads it: a Lambda's or a worker's JSON payload becomes its message."""
    text = str(cause or "")
    try:
        payload = json.loads(text)
    except ValueError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return payload["errorMessage"]
    return text


def _ms(start: datetime, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if end else None


def timeline(execution_arn: str, events: list[dict[str, Any]]) -> Timeline:
    """The history's events folded into one row per state entered."""
    states: list[StateRun] = []
    redrives: list[datetime] = []
    started, stopped, status, error, cause = None, None, "RUNNING", None, None
    for event in events:
        kind, at = event["type"], event["timestamp"]
        if kind == "ExecutionStarted":
            started = at
        elif kind == "ExecutionRedriven":  # a retry: the execution goes on from the state that failed
            redrives.append(at)
            stopped, status, error, cause = None, "RUNNING", None, None
        elif kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            states.append(StateRun(name, kind[: -len("StateEntered")], at, redrive=len(redrives)))
        elif kind.endswith("StateExited") and states:
            run = next((r for r in reversed(states) if r.name == event["stateExitedEventDetails"]["name"]), states[-1])
            run.exited = at
        elif _ATTEMPT.match(kind) and states:
            states[-1].attempts += 1
        elif _FAILURE.match(kind) and states:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            states[-1].errors.append({"error": details.get("error") or kind, "cause": _readable(details.get("cause"))})
        elif kind in _EXECUTION_END:
            stopped = at
            for run in states:  # Fail and Succeed states end the execution without an exit event
                if run.exited is None:
                    run.ended_execution = kind != "ExecutionSucceeded" and run.type not in ("Fail", "Succeed")
                    run.exited = at
            status = kind.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            error, cause = details.get("error"), details.get("cause")
    return Timeline(execution_arn, status, started or events[0]["timestamp"], stopped, states, error, cause, redrives)


def _execution_of(stack: str, job_id: str) -> str:
    item = job_item(stack, job_id)
    if "executionArn" not in item:
        raise OperatorError(f"no job {job_id}")
    return item["executionArn"]["S"]


def history(stack: str, job_id: str) -> Timeline:
    arn = _execution_of(stack, job_id)
    sfn = client("stepfunctions")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    try:
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except sfn.exceptions.ExecutionDoesNotExist:
        raise OperatorError(f"job {job_id}'s execution {arn} does not exist (yet, or any more)") from None
    return timeline(arn, events)


def executions(stack: str, status: str | None, since: timedelta | None, limit: int = 100) -> list[dict[str, Any]]:
    """The stack's executions, newest first (every state machine in its outputs)."""
    machines = [v for k, v in stack_outputs(stack).items() if k.endswith("StateMachineArn")]
    if not machines:
        raise OperatorError(f"stack {stack!r} lists no state machines in its outputs")
    oldest = datetime.now(UTC) - since if since else None
    found: list[dict[str, Any]] = []
    sfn = client("stepfunctions")
    for machine in machines:
        kwargs: dict[str, Any] = {"stateMachineArn": machine, "maxResults": 1000}
        if status:
            kwargs["statusFilter"] = status
        for page in sfn.get_paginator("list_executions").paginate(**kwargs):
            found += [e for e in page["executions"] if oldest is None or e["startDate"] >= oldest]
    found.sort(key=lambda e: e["startDate"], reverse=True)
    return found[:limit]


_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_since(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``2d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError("a duration like 30m, 1h or 2d")
    value, unit = int(match.group(1)), match.group(2)
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


# --- output -----------------------------------------------------------------------------------------


def print_history(found: Timeline, as_json: bool) -> None:
    if as_json:
        print(json.dumps(found.as_json(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{found.execution_arn.rsplit(':', 1)[-1]}: {found.status}", title_justify="left")
    for column in ("state", "type", "at (s)", "took (ms)", "attempts", "outcome / errors"):
        table.add_column(column, justify="right" if column in ("at (s)", "took (ms)", "attempts") else "left")
    shown_redrives = 0
    for run in found.states:
        if run.redrive > shown_redrives:  # a retry: the execution went on from the state that failed
            shown_redrives = run.redrive
            table.add_row(f"[bold]redriven ({run.redrive})[/]", "", "", "", "", "POST /jobs/{id}/retry")
        offset = (run.entered - found.started).total_seconds()
        took = _ms(run.entered, run.exited)
        errors = "; ".join(f"{e['error']}: {e['cause'][:120]}" if e["cause"] else e["error"] for e in run.errors)
        style = {"caught": "red", "failed": "red", "running": "yellow"}.get(
            run.outcome, "green" if not run.errors else "yellow"
        )
        table.add_row(
            run.name, run.type, f"{offset:.3f}", "" if took is None else str(took), str(run.attempts or ""),
            f"[{style}]{run.outcome}[/]" + (f", {run.retries} retried" if run.retries else "")
            + (f": {errors}" if errors else ""),
        )  # fmt: skip
    console.print(table)
    if found.error:
        console.print(f"[bold red]{found.status}[/]: {found.error}: {found.cause or ''}")


def print_executions(found: list[dict[str, Any]], as_json: bool) -> None:
    rows = [
        {
            "name": e["name"],
            "status": e["status"],
            "startedAt": e["startDate"].isoformat(),
            "stoppedAt": e["stopDate"].isoformat() if e.get("stopDate") else None,
            "executionArn": e["executionArn"],
        }
        for e in found
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("started", "status", "execution"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["startedAt"][:19], row["status"], row["name"])
    Console().print(table)
