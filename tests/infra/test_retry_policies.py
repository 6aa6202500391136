"""Every Task's Retry is one named policy of ``statemachines/retry-policies.json``, marked where it is read.

ASL has no include, so a policy is copied into each state that uses it, each retrier carrying
``"Comment": "retry policy <Name>"``. AWS documents a retrier's optional Comment ("It will not affect
the workflow, but can be used to annotate your workflow":
https://docs.aws.amazon.com/step-functions/latest/dg/workflow-studio-process-error.html); asl-validator
(tests/infra/test_asl_validator.py, over the same machines) and moto's engine accept it, and this file
checks moto's parser still does. A Retry that is no policy needs ``"Comment": "custom retry: <why>"``
on its first retrier.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.support import workflow_rules as rules


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    return rules.retry_policies()


@pytest.fixture(scope="module")
def machines() -> dict[str, dict[str, Any]]:
    return rules.machines()


def test_each_policy_says_why_its_numbers_and_marks_its_retriers(policies):
    assert {"LambdaTransient", "MustRun", "Handover"} <= set(policies)
    assert rules.catalogue_problems(policies) == []


def test_every_retry_is_a_named_policy(machines, policies):
    assert machines
    problems = [p for name, d in machines.items() for p in rules.retry_problems(name, d, policies)]
    fragment = rules.notify_fragment()
    problems += rules.retry_problems("notify-states.json", fragment, policies)
    assert problems == []


def test_every_policy_is_used_and_each_kind_of_step_has_its_own(machines, policies):
    users = rules.policy_users(machines, policies)
    assert all(users.values()), {name: states for name, states in users.items() if not states}
    assert "sync/CopyBatchDistributed" in users["LambdaTransient"] and "git_merge/Merge" in users["LambdaTransient"]
    assert {f"{m}/NotifyFailure" for m in machines} <= set(users["MustRun"])
    # build's lost workers are a Choice loop back to Queue (statemachines/build.asl.json), not a Retry:
    # a retried Run would hand its token to the claim of a worker that is gone.
    assert "WorkerLost" not in users and users["Handover"] == ["build/Queue", "build/Run"]


def test_a_planted_odd_retry_fails(machines, policies):
    """The 3-vs-4 drift this catalogue ended: one copy with another MaxAttempts is refused, naming the state."""
    planted = copy.deepcopy(machines["git_merge"])
    planted["States"]["Merge"]["Retry"][1]["MaxAttempts"] = 3
    problems = rules.retry_problems("git_merge", planted, policies)
    assert len(problems) == 1 and "git_merge/Merge" in problems[0] and "LambdaTransient but differs" in problems[0]

    unmarked = copy.deepcopy(machines["build"])
    unmarked["States"]["Prepare"]["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 9}]
    assert any(
        "build/Prepare" in p and "none of the named" in p for p in rules.retry_problems("build", unmarked, policies)
    )

    bare = copy.deepcopy(machines["build"])
    bare["States"]["Prepare"].pop("Retry")
    assert any("without Retry" in p for p in rules.retry_problems("build", bare, policies))


def test_a_custom_retry_passes_only_with_its_reason(machines, policies):
    custom = copy.deepcopy(machines["build"])
    custom["States"]["Prepare"]["Retry"] = [
        {"Comment": "custom retry: Prepare reads one small file; a retry past 2 s only delays the answer",
         "ErrorEquals": ["TransientError"], "MaxAttempts": 1}
    ]  # fmt: skip
    assert rules.retry_problems("build", custom, policies) == []
    custom["States"]["Prepare"]["Retry"][0]["Comment"] = "custom retry: because"
    assert rules.retry_problems("build", custom, policies) != []


def _with_arns(text: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}", text)


def test_moto_s_engine_parses_the_marked_retriers_and_refuses_an_unknown_retrier_field(machines):
    """The local engine's own ASL grammar: a retrier's Comment is a field it knows, a made-up one is not."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    for definition in machines.values():
        AmazonStateLanguageParser.parse(_with_arns(json.dumps(definition)))  # raises if refused
    planted = copy.deepcopy(machines["build"])
    planted["States"]["Prepare"]["Retry"][0]["Note"] = "not a retrier field"
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse(_with_arns(json.dumps(planted)))
