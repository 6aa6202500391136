"""The network of infra/template.yaml: what the steps in the VPC must reach, they can reach.

The steps that mount EFS run in private subnets and push progress to the WebSocket @connections
API, which no VPC endpoint serves (execute-api interface endpoints serve private REST APIs only),
and the git steps clone from the internet: so their subnets must route 0.0.0.0/0 to a NAT
gateway (docs/network.md). These checks evaluate the template's conditions for a given set of
parameters with the local cloud's own resolver and walk the routes:

- with the network the stack makes (the default, NatGateways 1 or 2), every function with a
  VpcConfig and the build workers sit in private subnets of two zones whose route table sends
  0.0.0.0/0 to a NAT gateway in a public subnet that routes to the internet gateway;
- the S3 and DynamoDB gateway endpoints exist and are attached to every private route table;
- no VPC endpoint claims to serve execute-api (the WebSocket management API);
- with a VPC of your own (VpcId + SubnetIds) none of the network resources is created, the VPC
  functions, workers and mount targets use the given subnets, and the Rules refuse one
  parameter without the other;
- no security group allows all egress.

Each check is also run on a planted copy of the template with the defect it looks for.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest

from longrun.local.cloudformation.intrinsics import Resolver

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
REGION = "us-east-1"

NETWORK_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::EIP",
    "AWS::EC2::NatGateway",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPCEndpoint",
}
CREATED = {}  # the defaults: the stack makes the network
BROUGHT = {"VpcId": "vpc-0abc1234", "SubnetIds": "subnet-0aaa1111,subnet-0bbb2222"}


@functools.cache
def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    return json.loads(json.dumps(template))


def template() -> dict[str, Any]:
    return copy.deepcopy(_template())


class Stack:
    """The template's resources as CloudFormation would create them for ``given`` parameters.

    A resource's Ref resolves to its logical id and GetAtt to ``<id>.<attribute>``, so that the
    checks can follow references from a function to its subnets, route tables and gateways.
    """

    def __init__(self, tpl: dict[str, Any], given: dict[str, Any]) -> None:
        params: dict[str, Any] = {"AWS::Region": REGION, "AWS::StackName": "net", "AWS::AccountId": "123456789012"}
        for name, spec in tpl.get("Parameters", {}).items():
            value = given.get(name, spec.get("Default"))
            if spec.get("Type") == "CommaDelimitedList" or str(spec.get("Type", "")).startswith("List<"):
                value = value if isinstance(value, list) else str(value).split(",")
            params[name] = value
        self.params = params
        self.template = tpl
        self.resolver = Resolver(
            parameters=params,
            conditions=tpl.get("Conditions", {}),
            ref=lambda logical_id: logical_id,
            get_att=lambda logical_id, attribute: f"{logical_id}.{attribute}",
        )
        self.resources = {
            logical_id: resource
            for logical_id, resource in tpl["Resources"].items()
            if "Condition" not in resource or self.resolver.condition(resource["Condition"])
        }

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolver.resolve(self.resources[logical_id].get("Properties", {}))

    def of_type(self, kind: str) -> list[str]:
        return [logical_id for logical_id, r in self.resources.items() if r["Type"] == kind]

    def failed_rules(self) -> list[str]:
        failed = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolver.resolve(rule["RuleCondition"]):
                continue
            failed += [name for a in rule["Assertions"] if not self.resolver.resolve(a["Assert"])]
        return failed

    # --- what the VPC members use ---------------------------------------------------------
    def vpc_members(self) -> dict[str, list[str]]:
        """Each function with a VpcConfig and each ECS service: the subnets it sits in."""
        members = {}
        for logical_id in self.of_type("AWS::Serverless::Function") + self.of_type("AWS::Lambda::Function"):
            vpc = self.resources[logical_id].get("Properties", {}).get("VpcConfig")
            if vpc:
                members[logical_id] = list(self.resolver.resolve(vpc)["SubnetIds"])
        for logical_id in self.of_type("AWS::ECS::Service"):
            network = self.resources[logical_id]["Properties"]["NetworkConfiguration"]
            members[logical_id] = list(self.resolver.resolve(network)["AwsvpcConfiguration"]["Subnets"])
        return members

    def route_table_of(self, subnet: str) -> str | None:
        for logical_id in self.of_type("AWS::EC2::SubnetRouteTableAssociation"):
            props = self.props(logical_id)
            if props["SubnetId"] == subnet:
                return str(props["RouteTableId"])
        return None

    def default_route(self, route_table: str) -> dict[str, Any] | None:
        for logical_id in self.of_type("AWS::EC2::Route"):
            props = self.props(logical_id)
            if props["RouteTableId"] == route_table and props.get("DestinationCidrBlock") == "0.0.0.0/0":
                return props
        return None


def egress_problems(stack: Stack, subnet: str) -> list[str]:
    """Why ``subnet`` cannot reach the internet through a NAT gateway (empty: it can)."""
    if subnet not in stack.of_type("AWS::EC2::Subnet"):
        return [f"{subnet} is not a subnet the stack makes"]
    table = stack.route_table_of(subnet)
    route = stack.default_route(table) if table else None
    if route is None:
        return [f"{subnet} has no 0.0.0.0/0 route"]
    nat = route.get("NatGatewayId")
    if nat not in stack.of_type("AWS::EC2::NatGateway"):
        return [f"{subnet} routes 0.0.0.0/0 to {route}, not to a NAT gateway of the stack"]
    nat_props = stack.props(nat)
    public = nat_props["SubnetId"]
    public_table = stack.route_table_of(public)
    public_route = stack.default_route(public_table) if public_table else None
    if public_route is None or public_route.get("GatewayId") not in stack.of_type("AWS::EC2::InternetGateway"):
        return [f"{nat} sits in {public}, which does not route 0.0.0.0/0 to the internet gateway"]
    if not str(nat_props.get("AllocationId", "")).endswith(".AllocationId"):
        return [f"{nat} has no Elastic IP (a public NAT gateway needs one)"]
    return []


def network_problems(stack: Stack) -> list[str]:
    """Every VPC member sits in NAT-routed private subnets of two zones (the stack's network)."""
    problems = []
    members = stack.vpc_members()
    if not members:
        return ["no function has a VpcConfig"]
    for member, subnets in members.items():
        if len(set(subnets)) < 2:
            problems.append(f"{member} sits in fewer than two subnets: {subnets}")
        zones = {json.dumps(stack.props(s).get("AvailabilityZone")) for s in subnets if s in stack.resources}
        if len(zones) < len(set(subnets)):
            problems.append(f"{member}'s subnets share an Availability Zone: {zones}")
        for subnet in subnets:
            problems += [f"{member}: {p}" for p in egress_problems(stack, subnet)]
            if subnet in stack.resources and stack.props(subnet).get("MapPublicIpOnLaunch"):
                problems.append(f"{member}: {subnet} gives public addresses (it should be private)")
    return problems


def endpoint_problems(stack: Stack) -> list[str]:
    """S3 and DynamoDB gateway endpoints on every private route table; no endpoint for execute-api."""
    problems = []
    private_tables = {stack.route_table_of(s) for subnets in stack.vpc_members().values() for s in subnets}
    endpoints = {logical_id: stack.props(logical_id) for logical_id in stack.of_type("AWS::EC2::VPCEndpoint")}
    for service in ("s3", "dynamodb"):
        wanted = f"com.amazonaws.{REGION}.{service}"
        found = [p for p in endpoints.values() if p.get("ServiceName") == wanted]
        if not found:
            problems.append(f"no {service} endpoint")
            continue
        for props in found:
            if props.get("VpcEndpointType") != "Gateway":
                kind = props.get("VpcEndpointType")
                problems.append(f"the {service} endpoint is {kind}, not a (free) Gateway endpoint")
            missing = private_tables - set(props.get("RouteTableIds", []))
            if missing:
                problems.append(f"the {service} endpoint is not attached to {sorted(map(str, missing))}")
    for logical_id, props in endpoints.items():
        if "execute-api" in str(props.get("ServiceName")):
            problems.append(f"{logical_id} claims execute-api, which serves private REST APIs, not @connections")
    return problems


def security_group_problems(stack: Stack) -> list[str]:
    """No group allows all egress; the VPC functions reach 443 and NFS on the mount targets."""
    problems = []
    egress: dict[str, list[dict[str, Any]]] = {}
    for logical_id in stack.of_type("AWS::EC2::SecurityGroup"):
        egress[logical_id] = list(stack.props(logical_id).get("SecurityGroupEgress", []))
        if not egress[logical_id]:
            problems.append(f"{logical_id} has no egress rule, so AWS gives it the default allow-all one")
    for logical_id in stack.of_type("AWS::EC2::SecurityGroupEgress"):
        props = stack.props(logical_id)
        egress.setdefault(str(props["GroupId"]).removesuffix(".GroupId"), []).append(props)
    for group, rules in egress.items():
        for rule in rules:
            if str(rule.get("IpProtocol")) == "-1" and rule.get("CidrIp") == "0.0.0.0/0":
                problems.append(f"{group} allows all egress")
    for group in ("LambdaSecurityGroup", "BuildWorkerSecurityGroup"):
        rules = egress.get(group, [])
        if not any(r.get("FromPort") == 443 and r.get("CidrIp") == "0.0.0.0/0" for r in rules):
            problems.append(f"{group} cannot reach AWS APIs on 443")
        if not any(r.get("FromPort") == 2049 and r.get("DestinationSecurityGroupId") for r in rules):
            problems.append(f"{group} cannot reach the mount targets on 2049")
    return problems


# ------------------------------------------------------------------------------------ the template
@pytest.mark.parametrize("nats", [1, 2])
def test_every_vpc_member_sits_in_private_subnets_behind_a_nat(nats: int) -> None:
    stack = Stack(template(), {"NatGateways": nats})
    assert stack.failed_rules() == []
    assert network_problems(stack) == []
    assert len(stack.of_type("AWS::EC2::NatGateway")) == nats
    # The ones the finding named are among them: the git, create-project and sync steps.
    assert {"GitCloneFunction", "GitMergeFunction", "InitRepositoryFunction", "SyncCopyFunction"} <= set(
        stack.vpc_members()
    )


def test_one_nat_per_zone_when_asked() -> None:
    stack = Stack(template(), {"NatGateways": 2})
    nats = {
        stack.default_route(stack.route_table_of(s))["NatGatewayId"]  # type: ignore[index]
        for s in ("PrivateSubnetA", "PrivateSubnetB")
    }
    assert nats == {"NatGatewayA", "NatGatewayB"}


def test_the_mount_targets_are_in_the_private_subnets() -> None:
    stack = Stack(template(), CREATED)
    subnets = {stack.props(m)["SubnetId"] for m in stack.of_type("AWS::EFS::MountTarget")}
    assert subnets == {"PrivateSubnetA", "PrivateSubnetB"}


def test_gateway_endpoints_for_s3_and_dynamodb_and_none_for_execute_api() -> None:
    assert endpoint_problems(Stack(template(), CREATED)) == []
    assert not [
        r for r in template()["Resources"].values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ], "no interface endpoint: the NAT carries the rest, and none would carry the @connections pushes"  # fmt: skip


@pytest.mark.parametrize("given", [CREATED, BROUGHT], ids=["created", "brought"])
def test_no_security_group_allows_all_egress(given: dict[str, Any]) -> None:
    assert security_group_problems(Stack(template(), given)) == []


def test_with_a_vpc_of_your_own_the_stack_makes_no_network() -> None:
    stack = Stack(template(), BROUGHT)
    assert stack.failed_rules() == []
    made = {logical_id: r["Type"] for logical_id, r in stack.resources.items() if r["Type"] in NETWORK_TYPES}
    assert made == {}
    given = BROUGHT["SubnetIds"].split(",")
    assert all(subnets == given for subnets in stack.vpc_members().values()), stack.vpc_members()
    assert [stack.props(m)["SubnetId"] for m in ("MountTargetA", "MountTargetB")] == given
    assert {stack.props(g)["VpcId"] for g in stack.of_type("AWS::EC2::SecurityGroup")} == {BROUGHT["VpcId"]}


@pytest.mark.parametrize(
    "given", [{"VpcId": BROUGHT["VpcId"]}, {"SubnetIds": BROUGHT["SubnetIds"]}], ids=["vpc-only", "subnets-only"]
)
def test_the_rules_refuse_a_vpc_without_its_subnets_and_the_other_way_round(given: dict[str, Any]) -> None:
    assert Stack(template(), given).failed_rules() != []


def test_the_infra_readme_no_longer_offers_endpoints_instead_of_a_nat() -> None:
    text = (REPO / "infra" / "README.md").read_text()
    assert "NAT gateway or VPC endpoints" not in text
    assert "docs/network.md" in text or "../docs/network.md" in text


# ------------------------------------------------------------------------------------ planted defects
def _planted(edit: Any) -> dict[str, Any]:
    tpl = template()
    edit(tpl["Resources"])
    return tpl


def test_a_private_subnet_without_its_nat_route_is_caught() -> None:
    tpl = _planted(lambda r: r.pop("PrivateDefaultRouteB"))
    assert any("PrivateSubnetB has no 0.0.0.0/0 route" in p for p in network_problems(Stack(tpl, CREATED)))


def test_a_function_in_the_public_subnets_is_caught() -> None:
    def move(resources: dict[str, Any]) -> None:
        resources["GitCloneFunction"]["Properties"]["VpcConfig"]["SubnetIds"] = [
            {"Ref": "PublicSubnetA"}, {"Ref": "PublicSubnetB"},
        ]  # fmt: skip

    problems = network_problems(Stack(_planted(move), CREATED))
    assert any(p.startswith("GitCloneFunction: PublicSubnetA") for p in problems), problems


def test_a_nat_without_an_internet_route_is_caught() -> None:
    tpl = _planted(lambda r: r.pop("PublicDefaultRoute"))
    assert any("does not route 0.0.0.0/0 to the internet gateway" in p for p in network_problems(Stack(tpl, CREATED)))


def test_subnets_in_one_zone_are_caught() -> None:
    def same_zone(resources: dict[str, Any]) -> None:
        resources["PrivateSubnetB"]["Properties"]["AvailabilityZone"] = {"Fn::Select": [0, {"Fn::GetAZs": ""}]}

    assert any("share an Availability Zone" in p for p in network_problems(Stack(_planted(same_zone), CREATED)))


def test_an_endpoint_missing_a_route_table_or_an_execute_api_endpoint_is_caught() -> None:
    def break_endpoints(resources: dict[str, Any]) -> None:
        resources["DynamoDbGatewayEndpoint"]["Properties"]["RouteTableIds"] = [{"Ref": "PrivateRouteTableA"}]
        resources["ExecuteApiEndpoint"] = {
            "Type": "AWS::EC2::VPCEndpoint",
            "Condition": "CreatesNetwork",
            "Properties": {
                "VpcId": {"Ref": "Vpc"},
                "VpcEndpointType": "Interface",
                "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.execute-api"},
            },
        }

    problems = endpoint_problems(Stack(_planted(break_endpoints), CREATED))
    assert any("dynamodb endpoint is not attached to ['PrivateRouteTableB']" in p for p in problems), problems
    assert any(p.startswith("ExecuteApiEndpoint claims execute-api") for p in problems), problems


def test_an_all_egress_security_group_is_caught() -> None:
    def open_up(resources: dict[str, Any]) -> None:
        resources["LambdaSecurityGroup"]["Properties"]["SecurityGroupEgress"] = [
            {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}
        ]

    assert "LambdaSecurityGroup allows all egress" in security_group_problems(Stack(_planted(open_up), CREATED))


def test_a_network_resource_made_with_a_brought_vpc_is_caught() -> None:
    tpl = _planted(lambda r: r["S3GatewayEndpoint"].pop("Condition"))
    stack = Stack(tpl, BROUGHT)
    assert [r for r in stack.resources.values() if r["Type"] in NETWORK_TYPES]
