"""The local cloud's fixes to moto's Step Functions engine, checked on the engine's own objects.

The races they mend depend on thread timing inside moto's server (the end-to-end tests in
tests/local/stepfunctions/test_task_tokens.py meet them only now and then); here each fix is driven
step by step. The definitions' judge (asl-validator behind ``CreateStateMachine``) is checked
through boto3 on moto in process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

from longrun.local.stepfunctions import patches


@pytest.fixture
def early_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch installed for this test only (and once: moto's own methods are put back after it)."""
    for name in ("notify_heartbeat", "setup_heartbeat_endpoint"):
        monkeypatch.setattr(CallbackEndpoint, name, CallbackEndpoint.__dict__[name])
    patches._early_heartbeats_count()


@pytest.mark.usefixtures("early_heartbeats")
def test_a_heartbeat_before_the_engine_watches_the_task_is_kept() -> None:
    endpoint = CallbackEndpoint(callback_id="token")
    # The message is out, the engine has not yet set up its heartbeat watch: the token is live.
    assert endpoint.notify_heartbeat() is True
    watch = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    # The watch starts with that heartbeat counted: its first wait returns at once, without timing out.
    assert watch.clear_and_wait() is True


@pytest.mark.usefixtures("early_heartbeats")
def test_a_heartbeat_after_the_watch_started_still_counts() -> None:
    endpoint = CallbackEndpoint(callback_id="token-2")
    watch = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    assert endpoint.notify_heartbeat() is True
    assert watch.clear_and_wait() is True


# --- CreateStateMachine / UpdateStateMachine judge definitions as Step Functions does ------------

_ROLE = "arn:aws:iam::123456789012:role/machine"
_GOOD = {"StartAt": "Copy", "States": {"Copy": {"Type": "Pass", "End": True}}}
# An inline Map whose processor names a state like a top-level one: moto's parser takes it; AWS
# answers InvalidDefinition (state names are unique across the whole machine, processors included).
_DUPLICATE = {
    "StartAt": "Copy",
    "States": {
        "Copy": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "Copy", "States": {"Copy": {"Type": "Pass", "End": True}}},
            "End": True,
        }
    },
}


@pytest.fixture
def judged_sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's Step Functions (its executing backend, as the local cloud runs it) with the fix installed."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from longrun.local.stepfunctions import asl_validator

    problem = asl_validator.problem()
    if problem:
        pytest.fail(problem)  # `make test` installs it: never skipped silently
    # The fix is installed for this test only: the other unit tests run moto as it is.
    monkeypatch.setattr(
        StepFunctionsParserBackend, "_validate_definition", StepFunctionsParserBackend.__dict__["_validate_definition"]
    )
    patches._definitions_judged_as_on_aws()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def test_moto_alone_accepts_a_state_name_used_twice() -> None:
    """The gap the fix fills: without it, moto creates what Step Functions refuses."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        sfn.create_state_machine(name="dup", definition=json.dumps(_DUPLICATE), roleArn=_ROLE)


def test_create_state_machine_refuses_a_state_name_used_twice(judged_sfn: Any) -> None:
    with pytest.raises(ClientError) as refused:
        judged_sfn.create_state_machine(name="dup", definition=json.dumps(_DUPLICATE), roleArn=_ROLE)
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "InvalidDefinition"
    assert "DUPLICATE_STATE_NAMES" in error["Message"] and "Copy" in error["Message"]
    assert judged_sfn.list_state_machines()["stateMachines"] == []


def test_create_state_machine_accepts_a_valid_definition_and_update_judges_too(judged_sfn: Any) -> None:
    arn = judged_sfn.create_state_machine(name="good", definition=json.dumps(_GOOD), roleArn=_ROLE)["stateMachineArn"]
    with pytest.raises(ClientError) as refused:
        judged_sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(_DUPLICATE))
    assert refused.value.response["Error"]["Code"] == "InvalidDefinition"
    assert json.loads(judged_sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == _GOOD


def test_a_refusal_names_rule_and_state_for_the_stack_builder(judged_sfn: Any) -> None:
    from longrun.local.refusals import AwsRefused
    from longrun.local.stepfunctions import asl_validator

    with pytest.raises(ClientError) as refused:
        judged_sfn.create_state_machine(name="dup", definition=json.dumps(_DUPLICATE), roleArn=_ROLE)
    turned = asl_validator.as_aws_refused("SyncStateMachine", refused.value)
    assert isinstance(turned, AwsRefused)
    assert (turned.resource, turned.rule, turned.state) == ("SyncStateMachine", "DUPLICATE_STATE_NAMES", "Copy")
    assert turned.doc.startswith("https://docs.aws.amazon.com/step-functions/")
