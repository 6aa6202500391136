"""Trivial state machines on the local engine: the floor that longrun's figures are compared with.

A Pass state calls nothing, so a bare ``StartExecution`` of such a machine, or its run to the end,
costs only moto's API and ASL interpreter, which longrun's workflows pay as well.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.cloud import Cloud

ROLE_ARN = "arn:aws:iam::123456789012:role/bench-no-op"


def pass_chain(states: int) -> dict[str, Any]:
    """``states`` Pass states in a row, the last one ending the execution."""
    names = [f"Pass{i + 1}" for i in range(states)]
    definition: dict[str, Any] = {"Comment": f"bench: {states} Pass states, no work", "StartAt": names[0], "States": {}}
    for i, name in enumerate(names):
        state: dict[str, Any] = {"Type": "Pass"}
        if i + 1 < len(names):
            state["Next"] = names[i + 1]
        else:
            state["End"] = True
        definition["States"][name] = state
    return definition


def create(cloud: Cloud, states: int) -> str:
    """A fresh no-op Standard state machine; its ARN."""
    sfn = cloud.aws_client("stepfunctions")
    name = f"bench-pass{states}-{uuid.uuid4().hex[:8]}"
    return sfn.create_state_machine(
        name=name, definition=json.dumps(pass_chain(states)), roleArn=ROLE_ARN, type="STANDARD"
    )["stateMachineArn"]


def executions(cloud: Cloud, machine_arn: str, prefix: str) -> list[dict[str, Any]]:
    """Every execution of the machine whose name starts with ``prefix`` (one round's)."""
    sfn = cloud.aws_client("stepfunctions")
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"stateMachineArn": machine_arn, "maxResults": 1000}
    while True:
        page = sfn.list_executions(**kwargs)
        found += [e for e in page["executions"] if e["name"].startswith(prefix)]
        if not page.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]


def state_transitions(cloud: Cloud, execution_arns: list[str]) -> list[int]:
    """Billed state transitions per execution: Step Functions Standard bills each state entered."""
    sfn = cloud.aws_client("stepfunctions")

    def count(arn: str) -> int:
        entered, kwargs = 0, {"executionArn": arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            entered += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
            if not page.get("nextToken"):
                return entered
            kwargs["nextToken"] = page["nextToken"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(count, execution_arns))
