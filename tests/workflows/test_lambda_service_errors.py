"""A Lambda invoke that the Lambda service refuses fails its Task with ``Lambda.<code>``, as on AWS.

The workflows' Retry names ``Lambda.TooManyRequestsException`` and ``Lambda.ServiceException`` for
a ``Resource`` that is the function's ARN; moto's engine called every such refusal ``Exception``,
which no Retry would match (``longrun/local/stepfunctions/patches.py``). The refusal here is Lambda's 404 for
a function that does not exist, which the session's fault-free cloud gives on demand.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

MISSING = "arn:aws:lambda:us-east-1:123456789012:function:longrun-no-such-function"


def test_a_refused_invoke_is_caught_by_its_lambda_error_name(local_cloud: Any) -> None:
    sfn = local_cloud.aws_client("stepfunctions")
    states = {
        "Call": {
            "Type": "Task",
            "Resource": MISSING,
            "Catch": [
                {"ErrorEquals": ["Lambda.ResourceNotFoundException"], "Next": "Named"},
                {"ErrorEquals": ["States.ALL"], "Next": "Unnamed"},
            ],
            "End": True,
        },
        "Named": {"Type": "Succeed"},
        "Unnamed": {"Type": "Fail", "Error": "Unnamed"},
    }
    machine = sfn.create_state_machine(
        name=f"probe-lambda-errors-{uuid.uuid4().hex[:10]}",
        definition=json.dumps({"StartAt": "Call", "States": states}),
        roleArn="arn:aws:iam::123456789012:role/probe",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    failures = [
        e["lambdaFunctionFailedEventDetails"]
        for e in sfn.get_execution_history(executionArn=execution)["events"]
        if e["type"] == "LambdaFunctionFailed"
    ]
    assert status == "SUCCEEDED", failures
    assert failures[0]["error"] == "Lambda.ResourceNotFoundException"
    assert "Status Code: 404" in failures[0]["cause"]
