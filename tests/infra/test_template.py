"""Checks of infra/template.yaml and statemachines/*.asl.json that need no AWS account.

- the template is cfn-lint clean;
- it translates with aws-sam-translator (offline) into resource types and intrinsics that the
  local cloud can emulate;
- every state machine definition is a well-formed graph whose placeholders match the template's
  DefinitionSubstitutions, every task retries, every task but notify catches, and cfn-lint's
  state machine checks pass on it;
- IAM is least privilege: no wildcard actions, Resource "*" only where AWS offers nothing narrower;
- every function's Handler names a file under handlers/, whose handler logs and traces with Powertools;
- observability: every state machine logs (without execution data) and traces, every dead-letter
  queue and every function has an alarm that notifies the alarm topic, and the dashboard is JSON
  that names only metrics and resources that exist.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_network import NETWORK_TYPES

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
TEMPLATE = INFRA / "template.yaml"
HANDLERS = REPO / "handlers"
STATEMACHINES = sorted((REPO / "statemachines").glob("*.asl.json"))

# What the local cloud (longrun/local) can create after the SAM transform.
ALLOWED_TYPES = {
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Lambda::LayerVersion",
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::StepFunctions::StateMachine",
    "AWS::Logs::LogGroup",
    "AWS::EFS::FileSystem",
    "AWS::EFS::MountTarget",
    "AWS::EFS::AccessPoint",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    # The network the stack makes when no VPC is given (docs/network.md); nothing to route locally.
    *NETWORK_TYPES,
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    # Accepted, and inert locally as on AWS without API keys (see RestApiUsagePlan).
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Stage",
    # The custom domains: judged at creation (apigateway/domains.py, route53/), mapped paths served.
    "AWS::ApiGateway::DomainName",
    "AWS::ApiGatewayV2::DomainName",
    "AWS::ApiGatewayV2::ApiMapping",
    "AWS::Route53::RecordSet",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::Rule",
    "AWS::Events::EventBus",
    "AWS::Lambda::EventSourceMapping",
    # The build workers: local processes, a fixed pool (services.py); the scaling is AWS's.
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::ECS::Service",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    # BuildCapacity EC2: judged at creation (aws_rules), inert locally (no instance is launched).
    "AWS::ECS::CapacityProvider",
    "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::AutoScaling::AutoScalingGroup",
    "AWS::EC2::LaunchTemplate",
    "AWS::IAM::InstanceProfile",
    "AWS::CloudWatch::Alarm",
    # Monitoring (alarms above too): created in the local cloud's CloudWatch and SNS, never evaluated.
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
}
# The intrinsics the local cloud resolves (Conditions may use Equals/Not/And/Or).
ALLOWED_INTRINSICS = {
    "Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::If", "Fn::Split", "Fn::GetAZs",
    "Fn::Base64",  # the build instances' UserData
}  # fmt: skip
ALLOWED_CONDITION_FUNCTIONS = {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition", "Ref"}

# Actions that may have Resource "*", each with the reason. Nothing else may.
RESOURCE_STAR_ALLOWED = {
    # ECS pulls the build worker's image with a registry-wide token.
    "ecr:GetAuthorizationToken": "the registry token has no resource-level permissions",
    # The ECS agent on a build instance (BuildCapacity EC2) finds its endpoint before it has an instance ARN.
    "ecs:DiscoverPollEndpoint": "no resource-level permissions (Service Authorization Reference)",
    # CloudWatch Logs vended-log delivery (Step Functions logging): no resource-level permissions.
    "logs:CreateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:GetLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:UpdateLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:DeleteLogDelivery": "vended log delivery has no resource-level permissions",
    "logs:ListLogDeliveries": "vended log delivery has no resource-level permissions",
    "logs:PutResourcePolicy": "account-level log resource policy that vended delivery writes",
    "logs:DescribeResourcePolicies": "account-level, no resource-level permissions",
    "logs:DescribeLogGroups": "List/Describe over all groups, no resource-level permissions",
    # Answering a task token (the build workers): these actions take no resource type at all.
    "states:SendTaskSuccess": "task tokens have no resource-level permissions",
    "states:SendTaskFailure": "task tokens have no resource-level permissions",
    "states:SendTaskHeartbeat": "task tokens have no resource-level permissions",
    # X-Ray (Tracing): no resource-level permissions.
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    "xray:GetSamplingStatisticSummaries": "X-Ray has no resource-level permissions",
}
# AWS managed policies that SAM attaches by itself, with the reason.
AWS_MANAGED_POLICIES_ALLOWED = {
    "AWSLambdaBasicExecutionRole": "every function: write its own logs",
    "AWSXrayWriteOnlyAccess": "Tracing: Active / Tracing.Enabled (X-Ray has no resource-level permissions)",
    "AWSLambdaVPCAccessExecutionRole": "functions in the VPC (EFS): manage their ENIs",
}

NOTIFY_RESOURCE = "${NotifyFunctionArn}"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


# ------------------------------------------------------------------------------------ helpers
def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cfnlint"]
    return subprocess.run([*cmd, "--", str(path)], capture_output=True, text=True, cwd=REPO, timeout=240)


def _plain(value: Any) -> Any:
    """cfn-lint's decoder returns dict/str subclasses carrying line marks; make plain JSON data."""
    return json.loads(json.dumps(value))


@functools.cache
def _sam_template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    return _plain(template)


def sam_template() -> dict[str, Any]:
    return copy.deepcopy(_sam_template())


class _NoIamPolicyLoader:
    """Managed policy loader that never calls IAM (policies are given as ARNs or Refs here)."""

    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def _translated() -> dict[str, Any]:
    """The template after the SAM transform, offline (as cfn-lint's SAM transform used to do it):
    local CodeUri/ContentUri/DefinitionUri become S3 placeholders before translating."""
    from samtranslator.translator.transform import transform

    template = sam_template()
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = "s3://placeholder-bucket/globals"
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://placeholder-bucket/{name}"

    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = saved or "us-east-1"  # the translator wants a region
    try:
        return _plain(transform(template, {}, _NoIamPolicyLoader()))
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)


def translated() -> dict[str, Any]:
    return copy.deepcopy(_translated())


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _state_machines() -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in sam_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::StateMachine"
    }


def _substitutions_for(asl_path: Path) -> dict[str, Any]:
    owners = [
        resource["Properties"]
        for resource in _state_machines().values()
        if isinstance(resource["Properties"].get("DefinitionUri"), str)
        and (INFRA / resource["Properties"]["DefinitionUri"]).resolve() == asl_path.resolve()
    ]
    assert len(owners) == 1, f"{asl_path.name} must be the DefinitionUri of exactly one state machine"
    return owners[0].get("DefinitionSubstitutions", {})


# ------------------------------------------------------------------------------------ ASL checks
def asl_problems(definition: dict[str, Any], where: str = "", caught_outside: bool = False) -> list[str]:
    """Graph and task-policy problems of one ASL definition (recursing into Parallel and Map).

    A Task inside a Map or Parallel may leave its errors to the enclosing state's Catch
    (``caught_outside``): catching them inside would turn a failed iteration into a success.
    """
    problems: list[str] = []
    states = definition.get("States")
    start = definition.get("StartAt")
    if not isinstance(states, dict) or not states:
        return [f"{where}: no States"]
    if start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state")

    edges: dict[str, list[str]] = {}
    for name, state in states.items():
        at = f"{where}/{name}"
        kind = state.get("Type")
        targets = [state["Next"]] if "Next" in state else []
        if kind == "Choice":
            choices = state.get("Choices") or []
            if not choices:
                problems.append(f"{at}: Choice without Choices")
            targets += [choice.get("Next") for choice in choices]
            if "Default" in state:
                targets.append(state["Default"])
        targets += [catcher.get("Next") for catcher in state.get("Catch", [])]
        edges[name] = targets
        for target in targets:
            if target not in states:
                problems.append(f"{at}: transition to missing state {target!r}")

        if kind in {"Task", "Pass", "Wait", "Parallel", "Map"}:
            if ("Next" in state) == bool(state.get("End")):
                problems.append(f"{at}: needs exactly one of Next or End: true")
        elif kind in {"Succeed", "Fail"}:
            if "Next" in state or "End" in state:
                problems.append(f"{at}: a {kind} state has no Next/End")
        elif kind != "Choice":
            problems.append(f"{at}: unknown Type {kind!r}")

        if kind == "Task":
            if not state.get("Retry"):
                problems.append(f"{at}: Task without Retry")
            if not state.get("Catch") and not caught_outside and state.get("Resource") != NOTIFY_RESOURCE:
                problems.append(f"{at}: Task without Catch (only {NOTIFY_RESOURCE} tasks may have none)")
        if kind == "Parallel":
            for i, branch in enumerate(state.get("Branches", [])):
                problems += asl_problems(branch, f"{at}/Branches[{i}]", bool(state.get("Catch")))
        if kind == "Map":
            inner = state.get("ItemProcessor") or state.get("Iterator")
            if inner is None:
                problems.append(f"{at}: Map without ItemProcessor")
            else:
                problems += asl_problems(inner, f"{at}/ItemProcessor", bool(state.get("Catch")))

    reachable: set[str] = set()
    todo = [start] if start in states else []
    while todo:
        name = todo.pop()
        if name in reachable or name not in states:
            continue
        reachable.add(name)
        todo += edges.get(name, [])
    for name in sorted(set(states) - reachable):
        problems.append(f"{where}/{name}: unreachable from StartAt")
    return problems


def _with_dummy_arns(text: str) -> dict[str, Any]:
    return json.loads(PLACEHOLDER.sub(r"arn:aws:lambda:us-east-1:123456789012:function:\1", text))


def _lint_asl(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint's state machine checks (E3601 and friends) on a plain CloudFormation template."""
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/machine",
                    "Definition": definition,
                },
            }
        },
    }
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(template, indent=1))
    return _cfn_lint(path)


# ------------------------------------------------------------------------------------ 1. lint
def test_template_is_cfn_lint_clean() -> None:
    result = _cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


# ------------------------------------------------------------------------------------ 2. translate
def test_translates_to_allowed_resource_types() -> None:
    resources = translated()["Resources"]
    types = {name: resource["Type"] for name, resource in resources.items()}
    refused = {name: kind for name, kind in types.items() if kind not in ALLOWED_TYPES}
    assert not refused, f"resource types the local cloud cannot emulate: {refused}"
    # The things the rest of the project relies on are there.
    for kind in (
        "AWS::Lambda::Function",
        "AWS::StepFunctions::StateMachine",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGatewayV2::Api",
        "AWS::DynamoDB::Table",
    ):
        assert kind in types.values(), kind


def test_translated_template_uses_only_supported_intrinsics() -> None:
    template = translated()
    assert "Mappings" not in template
    assert "Transform" not in template
    for section in ("Resources", "Outputs"):
        for node in _walk(template.get(section, {})):
            functions = {key for key in node if key == "Ref" or key.startswith("Fn::")}
            unsupported = functions - ALLOWED_INTRINSICS
            assert not unsupported, f"{section}: {unsupported} in {json.dumps(node)[:200]}"
    for name, condition in template.get("Conditions", {}).items():
        for node in _walk(condition):
            functions = {key for key in node if key in {"Ref", "Condition"} or key.startswith("Fn::")}
            assert functions <= ALLOWED_CONDITION_FUNCTIONS, f"condition {name}: {functions}"


def test_translated_template_is_cfn_lint_clean(tmp_path: Path) -> None:
    """The plain CloudFormation SAM produces is clean too (circular dependencies show up here)."""
    path = tmp_path / "translated.json"
    path.write_text(json.dumps(translated(), indent=1))
    result = _cfn_lint(path)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------ 3. state machines
def test_there_are_state_machines() -> None:
    assert STATEMACHINES, "no statemachines/*.asl.json"
    for name, resource in _state_machines().items():
        uri = resource["Properties"].get("DefinitionUri")
        assert isinstance(uri, str) and (INFRA / uri).is_file(), f"{name}: DefinitionUri {uri!r}"


@pytest.mark.parametrize("asl_path", STATEMACHINES, ids=[p.name for p in STATEMACHINES])
def test_state_machine_graph(asl_path: Path) -> None:
    definition = json.loads(asl_path.read_text())
    assert asl_problems(definition, asl_path.name) == []


@pytest.mark.parametrize("asl_path", STATEMACHINES, ids=[p.name for p in STATEMACHINES])
def test_state_machine_substitutions_match(asl_path: Path) -> None:
    placeholders = set(PLACEHOLDER.findall(asl_path.read_text()))
    substitutions = set(_substitutions_for(asl_path))
    assert placeholders - substitutions == set(), "placeholders without a DefinitionSubstitution"
    assert substitutions - placeholders == set(), "DefinitionSubstitutions the file does not use"


@pytest.mark.parametrize("asl_path", STATEMACHINES, ids=[p.name for p in STATEMACHINES])
def test_state_machine_passes_cfn_lint(asl_path: Path, tmp_path: Path) -> None:
    result = _lint_asl(_with_dummy_arns(asl_path.read_text()), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.skipif(not STATEMACHINES, reason="no state machine to break")
def test_state_machine_checks_can_fail(tmp_path: Path) -> None:
    """The checks above are not vacuous: broken copies of a definition are caught."""
    text = STATEMACHINES[0].read_text()
    good = json.loads(text)
    first = good["StartAt"]

    dangling = copy.deepcopy(good)
    dangling["States"][first]["Next"] = "NoSuchState"
    dangling["States"][first].pop("End", None)
    assert any("missing state" in p for p in asl_problems(dangling))

    orphan = copy.deepcopy(good)
    orphan["States"]["Orphan"] = {"Type": "Pass", "End": True}
    assert any("unreachable" in p for p in asl_problems(orphan))

    uncaught = copy.deepcopy(good)
    uncaught["States"][first].pop("Catch", None)
    uncaught["States"][first]["Resource"] = "${SomethingElseArn}"
    assert any("without Catch" in p for p in asl_problems(uncaught))

    bad_schema = _with_dummy_arns(text)
    task = next(s for s in bad_schema["States"].values() if s["Type"] == "Task")
    task["Retry"][0]["MaxAttempts"] = "three"
    assert _lint_asl(bad_schema, tmp_path).returncode != 0


# ------------------------------------------------------------------------------------ 4. IAM
def _policy_documents(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy.get('PolicyName')}", policy["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            yield name, props["PolicyDocument"]


def test_no_wildcard_actions_and_star_resources_only_where_unavoidable() -> None:
    documents = list(_policy_documents(translated()["Resources"]))
    assert documents
    for where, document in documents:
        for statement in _as_list(document["Statement"]):
            sid = f"{where}/{statement.get('Sid', '?')}"
            assert "NotAction" not in statement and "NotResource" not in statement, sid
            if statement.get("Effect") != "Allow":
                continue
            actions = _as_list(statement["Action"])
            for action in actions:
                assert isinstance(action, str) and "*" not in action, f"{sid}: wildcard action {action!r}"
            if "*" in _as_list(statement["Resource"]):
                not_allowed = [a for a in actions if a not in RESOURCE_STAR_ALLOWED]
                assert not not_allowed, f"{sid}: Resource '*' for {not_allowed}"


def test_roles_attach_only_known_managed_policies() -> None:
    resources = translated()["Resources"]
    own_policies = {n for n, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            if isinstance(arn, dict):
                assert arn.get("Ref") in own_policies, f"{name}: {arn}"
            else:
                assert arn.rsplit("/", 1)[-1] in AWS_MANAGED_POLICIES_ALLOWED, f"{name}: {arn}"


def test_resource_policies_grant_nothing_to_everyone() -> None:
    for name, resource in translated()["Resources"].items():
        if resource["Type"] != "AWS::S3::BucketPolicy":
            continue
        for statement in _as_list(resource["Properties"]["PolicyDocument"]["Statement"]):
            if statement.get("Principal") in ("*", {"AWS": "*"}):
                assert statement["Effect"] == "Deny", f"{name}: {statement}"


# ------------------------------------------------------------------------------------ wiring
def test_every_function_has_a_log_group_with_retention() -> None:
    resources = sam_template()["Resources"]
    functions = {n for n, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    named = {
        r["Properties"]["LogGroupName"].get("Fn::Sub"): r["Properties"].get("RetentionInDays")
        for r in resources.values()
        if r["Type"] == "AWS::Logs::LogGroup" and isinstance(r["Properties"].get("LogGroupName"), dict)
    }
    for function in functions:
        assert named.get(f"/aws/lambda/${{{function}}}") == {"Ref": "LogRetentionDays"}, function


STATE_MACHINE_ARN_PREFIX = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-"
)


def test_every_job_kinds_machine_is_found_by_the_naming_convention() -> None:
    """core/config.py: a job type's machine is STATE_MACHINE_ARN_PREFIX + type; no variable per kind."""
    template = sam_template()
    global_env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert global_env["STATE_MACHINE_ARN_PREFIX"] == {"Fn::Sub": STATE_MACHINE_ARN_PREFIX}
    kinds = {p.stem for p in (REPO / "schemas" / "jobs").glob("*.json")}
    names = {m["Properties"]["Name"]["Fn::Sub"] for m in _resources("AWS::Serverless::StateMachine").values()}
    assert names == {f"${{AWS::StackName}}-{kind}" for kind in kinds}, "one machine <stack>-<type> per schema"
    for name, function in _resources("AWS::Serverless::Function").items():
        variables = (function["Properties"].get("Environment") or {}).get("Variables") or {}
        assert not [v for v in variables if v.endswith("_STATE_MACHINE_ARN")], f"{name}: wired per kind"


# ------------------------------------------------------------------------------------ 5. handlers
def _handlers() -> list[tuple[str, str]]:
    return sorted(
        (name, resource["Properties"]["Handler"])
        for name, resource in _sam_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    )


def _defines(module: Path, attribute: str) -> bool:
    tree = ast.parse(module.read_text(), filename=str(module))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == attribute:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == attribute for t in targets):
                return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            (alias.asname or alias.name) == attribute for alias in node.names
        ):
            return True
    return False


@pytest.mark.parametrize(("function", "handler"), _handlers(), ids=[f for f, _ in _handlers()])
def test_handler_resolves_to_a_file(function: str, handler: str) -> None:
    module, _, attribute = handler.rpartition(".")
    path = HANDLERS.joinpath(*module.split(".")).with_suffix(".py")
    assert path.is_file(), f"{function}: {handler} -> {path.relative_to(REPO)} does not exist"
    assert _defines(path, attribute), f"{function}: {path.relative_to(REPO)} defines no {attribute!r}"


# ------------------------------------------------------------------------------------ 6. observability
OPERATIONS_DOC = REPO / "docs" / "operations.md"
# The metrics the dashboard and alarms may name in AWS's namespaces (as AWS documents them).
AWS_METRICS = {
    "AWS/States": {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut",
                   "ExecutionsAborted", "ExecutionThrottled", "ExecutionTime"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent", "NumberOfMessagesReceived"},
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"},
}  # fmt: skip
# What each AWS dimension names, as a template reference: StateMachineArn is a machine's Ref, and so on.
DIMENSION_REFERENCES = {
    "StateMachineArn": ("AWS::Serverless::StateMachine", None),
    "QueueName": ("AWS::SQS::Queue", "QueueName"),
    "FunctionName": ("AWS::Serverless::Function", None),
}
SUB_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s+MetricName=\"(\w+)\"")
ALARM_TOPIC = {"Ref": "AlarmTopic"}
# Where a template names a dead-letter target: (key, the key under it that holds the ARN).
DEAD_LETTER_KEYS = (("deadLetterTargetArn", None), ("DeadLetterConfig", "Arn"), ("DeadLetterQueue", "TargetArn"))


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in sam_template()["Resources"].items() if r["Type"] == kind}


def _referenced(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def _dead_letter_queues() -> set[str]:
    """Every queue that parks what failed: a redrive target, a rule's or a function's dead-letter
    target, or a queue named as one (so that a new one cannot slip by unreferenced)."""
    queues = set(_resources("AWS::SQS::Queue"))
    found = {q for q in queues if "DeadLetter" in q}
    for node in _walk(sam_template()["Resources"]):
        for key, inner in DEAD_LETTER_KEYS:
            if key in node:
                value = node[key][inner] if inner and isinstance(node[key], dict) else node[key]
                if _referenced(value) in queues:
                    found.add(_referenced(value))
    return found


def _notifies_alarm_topic(props: dict[str, Any]) -> bool:
    return ALARM_TOPIC in props.get("AlarmActions", []) and ALARM_TOPIC in props.get("OKActions", [])


def _alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of each metric an alarm reads, single metric or metric math."""
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        return [(props["Namespace"], props["MetricName"], dims)]
    out = []
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            out.append((metric["Namespace"], metric["MetricName"], dims))
    return out


def test_functions_trace_and_keep_responses_out_of_traces() -> None:
    template = sam_template()
    function_globals = template["Globals"]["Function"]
    assert function_globals["Tracing"] == "Active"
    variables = function_globals["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", "job results and user data stay out of X-Ray"
    assert variables["POWERTOOLS_SERVICE_NAME"] and variables["POWERTOOLS_METRICS_NAMESPACE"]
    for name, resource in _resources("AWS::Serverless::Function").items():
        assert resource["Properties"].get("Tracing", "Active") == "Active", name
    assert template["Resources"]["RestApi"]["Properties"]["TracingEnabled"] is True


def test_every_state_machine_logs_without_execution_data_and_traces() -> None:
    resources = sam_template()["Resources"]
    roles = translated()["Resources"]
    machines = _resources("AWS::Serverless::StateMachine")
    assert machines
    for name, machine in machines.items():
        props = machine["Properties"]
        logging = props["Logging"]
        assert logging["Level"] in ("ERROR", "ALL"), name
        # Inputs and outputs hold user data (parameters, repository URLs, results): never logged.
        assert logging["IncludeExecutionData"] is False, name
        (destination,) = logging["Destinations"]
        group = _referenced(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])
        group_props = resources[group]["Properties"]
        assert group_props["LogGroupName"]["Fn::Sub"].startswith("/aws/vendedlogs/states/"), name
        assert group_props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert props["Tracing"] == {"Enabled": True}, name
        # The role can deliver the logs (vended-log delivery) and the traces.
        role = roles[f"{name}Role"]["Properties"]
        documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])] + [
            roles[arn["Ref"]]["Properties"]["PolicyDocument"]
            for arn in role.get("ManagedPolicyArns", [])
            if isinstance(arn, dict) and roles.get(arn.get("Ref"), {}).get("Type") == "AWS::IAM::ManagedPolicy"
        ]
        actions = {
            action
            for document in documents
            for statement in _as_list(document["Statement"])
            for action in _as_list(statement["Action"])
        }
        assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= actions, name
        xray_managed = any("AWSXrayWriteOnlyAccess" in json.dumps(a) for a in role.get("ManagedPolicyArns", []))
        assert xray_managed or "xray:PutTraceSegments" in actions, name


def test_every_dead_letter_queue_has_an_alarm_that_notifies() -> None:
    dead_letters = _dead_letter_queues()
    assert {"UploadEventsDeadLetterQueue", "BuildDeadLetterQueue", "ExecutionEventsDeadLetterQueue"} <= dead_letters
    watched = {}
    for name, alarm in _resources("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        for namespace, metric, dims in _alarm_metrics(props):
            if (namespace, metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible") and _notifies_alarm_topic(
                props
            ):
                assert props["ComparisonOperator"] == "GreaterThanThreshold" and props["Threshold"] == 0, name
                watched[_referenced(dims["QueueName"])] = name
    missing = dead_letters - set(watched)
    assert not missing, f"dead-letter queues without an alarm: {sorted(missing)}"


def test_failed_timed_out_and_throttled_executions_of_every_state_machine_alarm() -> None:
    machines = set(_resources("AWS::Serverless::StateMachine"))
    seen: dict[str, set[str]] = {"ExecutionsFailed": set(), "ExecutionsTimedOut": set(), "ExecutionThrottled": set()}
    for alarm in _resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        for namespace, metric, dims in _alarm_metrics(props):
            if namespace == "AWS/States" and metric in seen and _notifies_alarm_topic(props):
                seen[metric].add(_referenced(dims["StateMachineArn"]))
    for metric, watched in seen.items():
        assert watched == machines, f"{metric}: {sorted(machines - watched)} not watched"


def test_every_function_is_in_exactly_one_throttles_alarm() -> None:
    functions = set(_resources("AWS::Serverless::Function"))
    watched: list[str] = []
    for name, alarm in _resources("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        metrics = _alarm_metrics(props)
        # CloudWatch takes at most 10 metrics in an alarm's metric math.
        assert len(metrics) <= 10, f"{name} reads {len(metrics)} metrics"
        throttles = [_referenced(d["FunctionName"]) for ns, m, d in metrics if (ns, m) == ("AWS/Lambda", "Throttles")]
        if throttles:
            assert _notifies_alarm_topic(props), name
            watched += throttles
    assert sorted(watched) == sorted(functions), "each function once: " + ", ".join(sorted(functions ^ set(watched)))


def test_every_alarm_notifies_the_topic_or_scales_and_the_runbook_explains_it() -> None:
    template = sam_template()
    policies = set(_resources("AWS::ApplicationAutoScaling::ScalingPolicy"))
    doc = OPERATIONS_DOC.read_text()
    assert "## Alarms" in doc
    runbook = doc.split("## Alarms", 1)[1]
    for name, alarm in _resources("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        actions = {_referenced(a) for a in props.get("AlarmActions", [])}
        if actions and actions <= policies:
            continue  # the build workers' scaling, not an operator's page
        assert _notifies_alarm_topic(props), f"{name} must notify AlarmTopic when it fires and when it recovers"
        assert props["TreatMissingData"] == "notBreaching", f"{name}: a quiet stack sends no data"
        assert name in runbook, f"docs/operations.md, Alarms: say what {name} means and what to do"
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}


def _emitted_metrics() -> tuple[set[str], set[str]]:
    """Metric names and dimension names the handlers' code emits (``name="…"`` in a metric call)."""
    names, dimensions = set(), {"service"}  # Powertools adds ``service`` (POWERTOOLS_SERVICE_NAME)
    for path in HANDLERS.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"(?:single_metric|add_metric)\(\s*name=\"(\w+)\"", text))
        dimensions |= set(re.findall(r"add_dimension\(name=\"(\w+)\"", text))
    return names, dimensions


def _dashboard() -> tuple[dict[str, Any], list[str]]:
    (dashboard,) = _resources("AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str), "DashboardBody is one !Sub string"
    placeholders = SUB_PLACEHOLDER.findall(text)
    body = json.loads(SUB_PLACEHOLDER.sub(lambda m: f"SUB:{m.group(1)}", text))
    return body, placeholders


def test_the_dashboard_is_json_and_names_only_what_exists() -> None:
    template = sam_template()
    resources = template["Resources"]
    body, placeholders = _dashboard()
    for placeholder in placeholders:
        logical_id, _, attribute = placeholder.partition(".")
        if logical_id.startswith("AWS::"):
            assert logical_id in {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition"}, placeholder
        else:
            assert logical_id in resources or (not attribute and logical_id in template["Parameters"]), placeholder
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    emitted, emitted_dimensions = _emitted_metrics()
    assert {"JobsStarted", "JobsFinished", "JobDuration"} <= emitted
    named: dict[str, set[str]] = {}  # metric name → the resources it is drawn for
    widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert widgets
    for widget in widgets:
        assert widget["properties"]["region"] == "SUB:AWS::Region"
        for entry in widget["properties"]["metrics"]:
            if isinstance(entry[0], dict):  # [{"expression": "SEARCH(...)"}]
                match = SEARCH.search(entry[0]["expression"])
                assert match, entry
                schema, metric = [s.strip() for s in match.group(1).split(",")], match.group(2)
                if schema[0] == namespace:
                    assert metric in emitted, f"{metric}: no handler emits it"
                    assert set(schema[1:]) <= emitted_dimensions, f"{metric}: dimensions {schema[1:]}"
                else:
                    assert metric in AWS_METRICS[schema[0]], f"{schema[0]} {metric}"
                named.setdefault(metric, set())
                continue
            ns, metric, *rest = entry
            dims = [d for d in rest if not isinstance(d, dict)]
            assert metric in AWS_METRICS.get(ns, set()), f"{ns} {metric}"
            for dimension, value in zip(dims[::2], dims[1::2], strict=True):
                kind, attribute = DIMENSION_REFERENCES[dimension]
                logical_id, _, used = value.removeprefix("SUB:").partition(".")
                assert resources[logical_id]["Type"] == kind, f"{dimension}={value}"
                assert (used or None) == attribute, f"{dimension}={value}"
                named.setdefault(metric, set()).add(logical_id)
    assert {"JobsStarted", "JobsFinished", "JobDuration"} <= set(named)
    assert named["ExecutionsStarted"] == set(_resources("AWS::Serverless::StateMachine"))
    assert named["ExecutionsFailed"] == set(_resources("AWS::Serverless::StateMachine"))
    assert named["ApproximateNumberOfMessagesVisible"] >= _dead_letter_queues() | {"BuildQueue"}
    assert {"Errors", "Throttles", "Duration"} <= set(named), "the functions' health"


def test_the_handlers_log_and_trace_with_powertools() -> None:
    """Every function's handler injects the Lambda context into its logs and is traced."""
    for function, handler in _handlers():
        module, _, attribute = handler.rpartition(".")
        path = HANDLERS.joinpath(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(), filename=str(path))
        (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == attribute]
        decorators = [ast.unparse(d) for d in node.decorator_list]
        assert any(d.startswith("logger.inject_lambda_context") for d in decorators), f"{function}: {decorators}"
        assert "tracer.capture_lambda_handler" in decorators, f"{function}: {decorators}"
        imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "core.observability"]
        assert imports, f"{function}: logger and tracer come from core.observability"
