"""Every state machine of the template, as CloudFormation would hand it to Step Functions, judged by asl-validator.

Step Functions refuses a definition that breaks the Amazon States Language (``InvalidDefinition``,
and the stack rolls back); moto accepts much of that. asl-validator (pinned in package.json,
installed by ``make test`` with ``npm ci``) judges each definition with its ARN and path checks on,
after the template's ``DefinitionSubstitutions`` are filled in with values of the shape
CloudFormation gives them (a function ARN for ``Fn::GetAtt Function.Arn``, a queue URL for a
queue's ``Ref``, ...). A planted duplicate state name proves the judge would catch one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from longrun.local.stepfunctions import asl_validator
from tests.infra.translated import translated
from tests.support.planted import duplicate_a_state_name

REGION, ACCOUNT = "us-east-1", "123456789012"
PARAMETERS = {"StageName": "prod"}


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[asl_validator.AslValidator]:
    """The pinned asl-validator, asked afresh (its own empty cache): a verdict here is node's own."""
    problem = asl_validator.problem()
    if problem:
        pytest.fail(problem)  # `make test` installs it: this judge never skips silently
    judge = asl_validator.AslValidator(cache_dir=tmp_path_factory.mktemp("asl-verdicts"))
    yield judge
    judge.close()


# What CloudFormation resolves Ref and Fn::GetAtt to, per resource type (the shape only; names are
# the logical ids): https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-getatt.html
def _plausible(kind: str, logical_id: str, attribute: str | None) -> str:
    name = logical_id.lower()
    values = {
        ("AWS::Lambda::Function", None): logical_id,
        ("AWS::Lambda::Function", "Arn"): f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}",
        ("AWS::SQS::Queue", None): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}",
        ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}",
        ("AWS::SQS::Queue", "QueueName"): logical_id,
        ("AWS::S3::Bucket", None): f"longrun-{name}",
        ("AWS::S3::Bucket", "Arn"): f"arn:aws:s3:::longrun-{name}",
        ("AWS::DynamoDB::Table", None): f"longrun-{logical_id}",
        ("AWS::DynamoDB::Table", "Arn"): f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/longrun-{logical_id}",
        ("AWS::SNS::Topic", None): f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}",
        ("AWS::Events::EventBus", None): logical_id,
        ("AWS::Events::EventBus", "Arn"): f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{logical_id}",
        ("AWS::StepFunctions::StateMachine", None): f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}",
        ("AWS::SSM::Parameter", None): f"/longrun/{logical_id}",
    }
    if (kind, attribute) not in values:
        pytest.fail(f"teach _plausible what {kind} {logical_id}{'.' + attribute if attribute else ''} resolves to")
    return values[(kind, attribute)]


def _substitution(template: dict[str, Any], value: Any) -> str:
    """A DefinitionSubstitutions value as CloudFormation would resolve it."""
    if isinstance(value, str | int | float):
        return str(value)
    resources, parameters = template["Resources"], template.get("Parameters", {})
    if "Ref" in value:
        target = value["Ref"]
        if target in resources:
            return _plausible(resources[target]["Type"], target, None)
        if target in parameters:
            return str(PARAMETERS.get(target, parameters[target].get("Default", "")))
        return {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}[target]
    if "Fn::GetAtt" in value:
        target, attribute = value["Fn::GetAtt"]
        return _plausible(resources[target]["Type"], target, attribute)
    pytest.fail(f"teach _substitution to resolve {value}")


def _text(logical_id: str, props: dict[str, Any]) -> str:
    """The definition's text before substitution: SAM writes it as a ``Fn::Join`` of its lines."""
    value = props.get("DefinitionString", props.get("Definition"))
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        assert all(isinstance(p, str) for p in parts), f"{logical_id}: a definition built with intrinsics"
        return separator.join(parts)
    return value if isinstance(value, str) else json.dumps(value)


def rendered_definitions(template: dict[str, Any]) -> dict[str, str]:
    """Each state machine's definition, its placeholders filled in, as Step Functions would receive it."""
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        text = _text(logical_id, props)
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + key + "}", _substitution(template, value))
        assert "${" not in text, f"{logical_id}: a placeholder without a substitution"
        out[logical_id] = text
    return out


@pytest.fixture(scope="module")
def definitions() -> dict[str, str]:
    return rendered_definitions(translated())


def test_every_state_machine_is_valid_asl(validator: asl_validator.AslValidator, definitions: dict[str, str]) -> None:
    assert definitions, "the template has no state machine"
    refused = {logical_id: validator.validate(text) for logical_id, text in sorted(definitions.items())}
    refused = {logical_id: verdict.describe() for logical_id, verdict in refused.items() if not verdict.valid}
    assert not refused, f"Step Functions would refuse (InvalidDefinition): {refused}"


def test_a_planted_duplicate_state_name_is_caught(
    validator: asl_validator.AslValidator, definitions: dict[str, str]
) -> None:
    """A Map processor's first state renamed like a top-level state: what sync.asl.json once did."""
    planted = {logical_id: json.loads(text) for logical_id, text in sorted(definitions.items())}
    logical_id, taken = next(
        ((lid, name) for lid, d in planted.items() if (name := duplicate_a_state_name(d)) is not None),
        (None, None),
    )
    assert logical_id is not None, "no state machine of the template has a Map state to plant a duplicate in"
    verdict = validator.validate(json.dumps(planted[logical_id]))
    assert not verdict.valid, f"a duplicate state name {taken!r} in {logical_id} went unnoticed"
    assert ("DUPLICATE_STATE_NAMES", taken) in {(f.code, f.state) for f in verdict.findings}


def test_the_arn_and_path_checks_are_on(validator: asl_validator.AslValidator, definitions: dict[str, str]) -> None:
    """A Task's Resource that is no ARN, and an InputPath that is no path, are each refused."""
    logical_id, text = sorted(definitions.items())[0]
    definition = json.loads(text)
    name, task = next((n, s) for n, s in definition["States"].items() if s["Type"] == "Task")
    bad_arn = copy.deepcopy(definition)
    bad_arn["States"][name]["Resource"] = "lambda-function-" + name
    bad_path = copy.deepcopy(definition)
    bad_path["States"][name]["InputPath"] = "$.[unclosed"
    for planted in (bad_arn, bad_path):
        verdict = validator.validate(json.dumps(planted))
        assert not verdict.valid, f"{logical_id}: {task} planted with a bad Resource or path was accepted"
        assert {f.state for f in verdict.findings} == {name}
