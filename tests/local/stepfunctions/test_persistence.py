"""Step Functions across a restart of the local cloud: the persistence adapter and the settling at start.

The scenario (tests/local/stepfunctions/restart_scenario.py) runs in a process of its own, with every
patch of moto installed: executions that succeed, fail, run a Distributed Map, are stopped with a
reason, and one that waits on a task token; then the "restart" ``longrun local up`` does (a fresh
backend, the state machine created again, the dump restored), the settling, and a redrive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from longrun.local.stepfunctions import settle

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-m", "tests.local.stepfunctions.restart_scenario"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


def test_the_read_apis_answer_after_a_restart_what_they_answered_before(seen: dict[str, Any]) -> None:
    before, after = seen["before"], seen["after"]
    statuses = {name: d["status"] for name, d in before["describe"].items()}
    assert statuses == {"done": "SUCCEEDED", "failed": "FAILED", "mapped": "SUCCEEDED", "stopped": "ABORTED",
                        "held": "RUNNING"}  # fmt: skip
    assert before["describe"]["failed"]["error"] == "Boom"
    assert after["describe"] == before["describe"], "DescribeExecution: status, dates, input, output, error, redrive"
    assert after["list"] == before["list"], "ListExecutions: every execution, newest first"
    assert after["history"] == before["history"], "GetExecutionHistory: every event, ids and timestamps"
    assert len(before["history"]["held"]) > 5 and before["history"]["held"][-1]["type"] == "TaskSubmitted"
    assert after["map_runs"] == before["map_runs"] and after["map_run"] == before["map_run"]
    assert after["map_run"]["itemCounts"]["succeeded"] == 3


def test_only_an_execution_that_runs_keeps_the_snapshots_going(seen: dict[str, Any]) -> None:
    running_before, restored_running, redriven_running = seen["busy"]
    assert running_before is True
    assert restored_running is False, "a restored RUNNING execution runs nothing: its history changes only on requests"
    assert redriven_running is True, "a redriven one runs again"


def test_a_stop_keeps_its_error_and_cause_as_on_aws(seen: dict[str, Any]) -> None:
    stopped = seen["before"]["describe"]["stopped"]
    assert (stopped["error"], stopped["cause"]) == ("Operator", "stopped by a test")
    assert stopped["stopDate"] == seen["stop_answer"]["stopDate"]
    last = seen["before"]["history"]["stopped"][-1]
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {"error": "Operator", "cause": "stopped by a test"}


def test_a_restored_running_execution_is_settled_once_with_the_local_clouds_reason(seen: dict[str, Any]) -> None:
    held_arn = seen["arns"]["held"]
    assert seen["old_token_heartbeat"] == "InvalidToken", "the last run's task token is no one's now"
    assert seen["old_token_success"] == "InvalidToken", (
        "a build worker's claim with it is refused: it drops the message"
    )
    assert seen["settled"] == [held_arn] and seen["settled_again"] == []
    held = seen["held"]
    assert held["status"] == "ABORTED" and held["error"] == settle.ERROR == "LocalCloudStopped"
    assert held["cause"] == settle.CAUSE and held["redriveStatus"] == "REDRIVABLE"
    history = seen["held_history"]
    assert history[:-1] == seen["after"]["history"]["held"], "the history so far, then one event"
    assert history[-1]["type"] == "ExecutionAborted"
    assert history[-1]["executionAbortedEventDetails"] == {"error": settle.ERROR, "cause": settle.CAUSE}
    ends = [e for e in seen["status_events"] if e["executionArn"] == held_arn]
    assert [(e["status"], e["error"], e["cause"]) for e in ends] == [("ABORTED", settle.ERROR, settle.CAUSE)]
    assert seen["running_after_settle"] == []
    assert seen["done_after_stop"] == "SUCCEEDED", "a stop of an ended restored execution changes nothing"


def test_a_settled_execution_is_redriven_from_the_state_it_was_in(seen: dict[str, Any]) -> None:
    assert seen["redriven"]["status"] == "SUCCEEDED" and seen["redriven"]["redriveCount"] == 1
    types = [e["type"] for e in seen["redriven_history"]]
    aborted = types.index("ExecutionAborted")
    assert types[aborted + 1 : aborted + 3] == ["ExecutionRedriven", "TaskStateEntered"], "resumed at Hold"
    assert types.count("ExecutionStarted") == 1 and types.count("PassStateEntered") == 2
    assert types[-1] == "ExecutionSucceeded"
    ids = [e["id"] for e in seen["redriven_history"]]
    assert ids == list(range(1, len(ids) + 1))
