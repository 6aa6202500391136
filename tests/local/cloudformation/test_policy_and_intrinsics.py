"""The local cloud's emulation pieces: IAM evaluation of authorizer policies, intrinsic functions,
and refusing a template it cannot emulate."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from longrun.local.apigateway.rest_front import _allows
from longrun.local.cloudformation.engine import CannotEmulate, StackBuilder
from longrun.local.cloudformation.intrinsics import Resolver, Unsupported

ARN = "arn:aws:execute-api:us-east-1:123456789012:api123/test/GET/jobs/abc"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(resource: Any, action: Any = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


# --- _allows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        ARN,
        "arn:aws:execute-api:us-east-1:123456789012:api123/test/*/*",
        "arn:aws:execute-api:us-east-1:123456789012:api123/*",
        "arn:aws:execute-api:*:*:api123/test/GET/*",
        [
            "arn:aws:execute-api:us-east-1:123456789012:other/*",
            "arn:aws:execute-api:us-east-1:123456789012:api123/test/*/*",
        ],
        "*",
    ],
)
def test_allow_with_a_matching_resource(resource):
    assert _allows(policy(allow(resource)), ARN) is True


@pytest.mark.parametrize("action", ["execute-api:*", "*", ["s3:GetObject", "execute-api:Invoke"]])
def test_allow_with_a_matching_action(action):
    assert _allows(policy(allow("*", action)), ARN) is True


@pytest.mark.parametrize(
    "document",
    [
        policy(),
        {},
        policy(allow("arn:aws:execute-api:us-east-1:123456789012:api123/prod/*/*")),  # another stage
        policy(allow("arn:aws:execute-api:us-east-1:123456789012:api999/test/*/*")),  # another API
        policy(allow("arn:aws:execute-api:us-east-1:123456789012:api123/test/POST/*")),  # another method
        policy(allow(ARN, "s3:GetObject")),  # another action
        policy({"Effect": "Allow", "Resource": ARN}),  # no action
        policy({"Action": "execute-api:Invoke", "Resource": ARN}),  # no effect
    ],
)
def test_no_matching_allow_is_a_refusal(document):
    assert _allows(document, ARN) is False


def test_an_explicit_deny_wins_in_either_order():
    everything = allow("arn:aws:execute-api:us-east-1:123456789012:api123/test/*/*")
    this_one = deny("arn:aws:execute-api:us-east-1:123456789012:api123/test/GET/jobs/*")
    assert _allows(policy(everything, this_one), ARN) is False
    assert _allows(policy(this_one, everything), ARN) is False
    # A Deny elsewhere does not take the Allow away.
    elsewhere = deny("arn:aws:execute-api:us-east-1:123456789012:api123/test/DELETE/*")
    assert _allows(policy(everything, elsewhere), ARN) is True


def test_a_deny_of_another_action_does_not_apply():
    assert _allows(policy(allow("*"), deny("*", "s3:*")), ARN) is True


# --- Resolver ----------------------------------------------------------------------------------


@pytest.fixture
def resolver() -> Resolver:
    resources = {"Table": "unit-Table-ABC", "Bucket": "unit-bucket-abc"}
    attributes = {("Table", "Arn"): "arn:aws:dynamodb:us-east-1:123456789012:table/unit-Table-ABC",
                  ("Api", "ApiEndpoint"): "wss://abc.execute-api.us-east-1.amazonaws.com"}  # fmt: skip

    def ref(name: str) -> Any:
        if name not in resources:
            raise Unsupported(f"Ref to unknown {name}")
        return resources[name]

    def get_att(logical: str, attribute: str) -> Any:
        if (logical, attribute) not in attributes:
            raise Unsupported(f"unknown {logical}.{attribute}")
        return attributes[(logical, attribute)]

    return Resolver(
        parameters={
            "StageName": "test",
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "SubnetIds": ["subnet-a", "subnet-b"],
        },
        conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "StageName"}, "prod"]},
            "IsTest": {"Fn::Equals": [{"Ref": "StageName"}, "test"]},
            "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
            "Both": {"Fn::And": [{"Condition": "IsTest"}, {"Condition": "NotProd"}]},
            "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsTest"}]},
        },
        ref=ref,
        get_att=get_att,
    )


def test_ref_of_parameters_and_resources(resolver):
    assert resolver.resolve({"Ref": "StageName"}) == "test"
    assert resolver.resolve({"Ref": "Table"}) == "unit-Table-ABC"
    with pytest.raises(Unsupported):
        resolver.resolve({"Ref": "Nothing"})


def test_sub(resolver):
    assert resolver.resolve({"Fn::Sub": "arn:aws:ssm:${AWS::Region}:${AWS::AccountId}:parameter/x"}) == (
        "arn:aws:ssm:us-east-1:123456789012:parameter/x"
    )
    assert resolver.resolve({"Fn::Sub": "${Table.Arn}/index/*"}) == (
        "arn:aws:dynamodb:us-east-1:123456789012:table/unit-Table-ABC/index/*"
    )
    assert resolver.resolve({"Fn::Sub": "${Api.ApiEndpoint}/${StageName}"}) == (
        "wss://abc.execute-api.us-east-1.amazonaws.com/test"
    )
    assert resolver.resolve({"Fn::Sub": ["${Name}-${Table}", {"Name": {"Ref": "StageName"}}]}) == "test-unit-Table-ABC"
    assert resolver.resolve({"Fn::Sub": "${!Literal} ${Bucket}"}) == "${Literal} unit-bucket-abc"
    assert resolver.resolve({"Fn::Sub": "${SubnetIds}"}) == "subnet-a,subnet-b"
    assert resolver.resolve({"Fn::Sub": "no variables"}) == "no variables"


def test_join_select_split(resolver):
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "StageName"}, "c"]]}) == "a/test/c"
    assert resolver.resolve({"Fn::Join": [",", {"Ref": "SubnetIds"}]}) == "subnet-a,subnet-b"
    assert resolver.resolve({"Fn::Join": ["", []]}) == ""
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "SubnetIds"}]}) == "subnet-b"
    assert resolver.resolve({"Fn::Select": ["0", {"Ref": "SubnetIds"}]}) == "subnet-a"
    assert resolver.resolve({"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}) == "x"


def test_if_and_conditions(resolver):
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}) == "small"
    assert resolver.resolve({"Fn::If": ["IsTest", {"Ref": "Table"}, "none"]}) == "unit-Table-ABC"
    assert resolver.condition("NotProd") is True
    assert resolver.condition("Both") is True
    assert resolver.condition("Either") is True
    # AWS::NoValue removes the property or list item it stands for.
    assert resolver.resolve({"A": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}, "B": 2}) == {"B": 2}
    assert resolver.resolve(["x", {"Fn::If": ["IsProd", "y", {"Ref": "AWS::NoValue"}]}]) == ["x"]
    with pytest.raises(Unsupported):
        resolver.resolve({"Fn::If": ["NoSuchCondition", 1, 2]})


def test_get_azs_names_distinct_zones_of_the_region(resolver):
    """The stack's subnets pick zones 0 and 1 of Fn::GetAZs; they must differ, as on AWS."""
    zones = resolver.resolve({"Fn::GetAZs": ""})
    assert zones[:2] == ["us-east-1a", "us-east-1b"] and len(set(zones)) == len(zones)
    assert resolver.resolve({"Fn::Select": [1, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]}) == "us-east-1b"
    assert resolver.resolve({"Fn::GetAZs": "eu-west-1"})[0] == "eu-west-1a"


def test_get_att(resolver):
    assert (
        resolver.resolve({"Fn::GetAtt": ["Table", "Arn"]})
        == "arn:aws:dynamodb:us-east-1:123456789012:table/unit-Table-ABC"
    )
    assert (
        resolver.resolve({"Fn::GetAtt": "Table.Arn"}) == "arn:aws:dynamodb:us-east-1:123456789012:table/unit-Table-ABC"
    )
    with pytest.raises(Unsupported):
        resolver.resolve({"Fn::GetAtt": ["Table", "StreamArn"]})


def test_nested_structures_resolve_throughout(resolver):
    value = {"Env": {"Variables": {"T": {"Ref": "Table"}, "N": 3, "L": [{"Fn::Sub": "${StageName}!"}]}}}
    assert resolver.resolve(value) == {"Env": {"Variables": {"T": "unit-Table-ABC", "N": 3, "L": ["test!"]}}}


def test_base64_encodes_what_it_resolves(resolver):
    """Fn::Base64 (a launch template's UserData) encodes the resolved string, as CloudFormation does."""
    assert resolver.resolve({"Fn::Base64": {"Fn::Sub": "${StageName}\n"}}) == "dGVzdAo="


@pytest.mark.parametrize("function", ["Fn::FindInMap", "Fn::ImportValue", "Fn::Cidr"])
def test_unsupported_functions_are_refused_loudly(resolver, function):
    with pytest.raises(Unsupported, match=function):
        resolver.resolve({function: ["a", "b"]})


# --- StackBuilder ------------------------------------------------------------------------------


def test_an_unsupported_resource_type_is_refused_by_name(translated, tmp_path):
    template = copy.deepcopy(translated)
    template.template["Resources"]["Database"] = {"Type": "AWS::RDS::DBInstance", "Properties": {}}
    template.template["Resources"]["Stream"] = {"Type": "AWS::Kinesis::Stream", "Properties": {}}

    def no_aws(service: str) -> Any:
        raise AssertionError("nothing may be created before the template is refused")

    with pytest.raises(CannotEmulate) as refused:
        StackBuilder(
            template,
            stack_name="unit",
            region="us-east-1",
            parameters={"StageName": "test", "VpcId": "vpc-1", "SubnetIds": "subnet-a,subnet-b"},
            data_dir=tmp_path,
            websocket_management_base="https://abc.execute-api.us-east-1.amazonaws.com",
            aws=no_aws,
        )
    message = str(refused.value)
    assert "Database (AWS::RDS::DBInstance)" in message
    assert "Stream (AWS::Kinesis::Stream)" in message


@pytest.fixture
def built(translated: Any, tmp_path: Any, boto_session: Any) -> Iterator[tuple[Any, Any]]:
    """The template's stack built in moto in process, as the unit tests' ``aws`` fixture builds it: (stack, client)."""
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            return clients.setdefault(service, boto_session.client(service, region_name="us-east-1"))

        stack = StackBuilder(
            copy.deepcopy(translated),
            stack_name="unit",
            region="us-east-1",
            parameters={"StageName": "test", "VpcId": "vpc-1", "SubnetIds": "subnet-a,subnet-b"},
            data_dir=tmp_path,
            websocket_management_base="https://abc.execute-api.us-east-1.amazonaws.com",
            aws=client,
        ).build()
        yield stack, client


def test_the_template_as_it_is_is_accepted(built: tuple[Any, Any]) -> None:
    """The real template builds: every function has its code, and the API and WebSocket routes are known."""
    stack, _ = built
    assert {f.logical_id for f in stack.functions} >= {"ApiFunction", "NotifyFunction", "InitRepositoryFunction"}
    assert stack.rest_api is not None and stack.rest_api.stage == "test"
    assert {(r.method, r.path) for r in stack.rest_api.routes} >= {("POST", "/jobs"), ("GET", "/jobs/{jobId}")}
    assert set(stack.websocket_api.routes) == {"$connect", "$disconnect", "$default"}
    assert stack.websocket_api.connect_authorizer is not None
    assert stack.outputs["WebSocketUrl"].endswith("/test")


def test_a_parameter_without_default_must_be_given(translated, tmp_path):
    # Every parameter of the template has a default now (VpcId's "" makes the stack's own network).
    template = copy.deepcopy(translated)
    del template.template["Parameters"]["VpcId"]["Default"]
    with pytest.raises(CannotEmulate, match="VpcId"):
        StackBuilder(
            template,
            stack_name="unit",
            region="us-east-1",
            parameters={"StageName": "test", "SubnetIds": "subnet-a,subnet-b"},
            data_dir=tmp_path,
            websocket_management_base="https://abc.execute-api.us-east-1.amazonaws.com",
            aws=lambda service: None,
        )


def test_alarms_dashboard_and_alarm_topic_are_created_where_operators_look(built: tuple[Any, Any]) -> None:
    """``aws cloudwatch describe-alarms`` and the dashboard work against the local cloud as on AWS."""
    stack, client = built
    topic = stack.outputs["AlarmTopicArn"]
    assert topic in client("sns").list_topics()["Topics"][0].values()
    assert client("sns").list_subscriptions()["Subscriptions"] == [], "no AlarmEmail, no subscription"

    alarms = {a["AlarmName"]: a for a in client("cloudwatch").describe_alarms()["MetricAlarms"]}
    dead_letters = [a for a in alarms.values() if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert len(dead_letters) >= 3 and all(a["AlarmActions"] == [topic] for a in dead_letters)
    failed = next(a for name, a in alarms.items() if "FailedExecutionsAlarm" in name)
    assert failed["Threshold"] == 5 and failed["OKActions"] == [topic]
    assert {m["Id"] for m in failed["Metrics"]} >= {"failed", "createProject", "build"}

    (dashboard,) = client("cloudwatch").list_dashboards()["DashboardEntries"]
    assert dashboard["DashboardName"] == "unit"
    body = json.loads(client("cloudwatch").get_dashboard(DashboardName="unit")["DashboardBody"])
    assert "${" not in json.dumps(body), "every substitution resolved"
    assert stack.outputs["DashboardUrl"].endswith("#dashboards/dashboard/unit")
