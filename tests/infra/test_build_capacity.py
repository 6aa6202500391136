"""BuildCapacity FARGATE | EC2 and the warm minimums (docs/deploy.md, "Build capacity").

The template as CloudFormation receives it (tests/infra/translated.py), its conditions and intrinsics
resolved by the local cloud's engine for a set of parameters: what a stack deployed with them has.

- FARGATE (the default) is what the stack was before EC2 capacity existed: the same resources,
  each build worker resource with the same properties;
- EC2 adds the capacity provider, its Auto Scaling group, launch template and instance role, and
  nothing of it exists otherwise; the service then names a capacity provider strategy, no launch
  type; the task definition requires EC2 and bind-mounts the instance's cache directory;
- the create-time rules AWS applies to them (longrun/local/aws_rules.py) pass, and each refuses
  its planted defect.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from longrun.local import aws_rules
from longrun.local.refusals import AwsRefused
from tests.infra.test_aws_limits import _builder, _of_type
from tests.infra.translated import translated

IMAGE = {"BuildWorkerImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/longrun-build-worker:1"}
EC2 = {**IMAGE, "BuildCapacity": "EC2"}
EC2_ONLY = {
    "BuildInstanceRole": "AWS::IAM::Role",
    "BuildInstanceProfile": "AWS::IAM::InstanceProfile",
    "BuildInstanceLaunchTemplate": "AWS::EC2::LaunchTemplate",
    "BuildInstanceGroup": "AWS::AutoScaling::AutoScalingGroup",
    "BuildCapacityProvider": "AWS::ECS::CapacityProvider",
    "BuildClusterCapacityProviders": "AWS::ECS::ClusterCapacityProviderAssociations",
}
CACHE = "/var/cache/longrun-build"


def _deployed(parameters: dict[str, Any], cfn: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every resource the parameters create: logical id → {Type, Properties resolved}."""
    builder = _builder(cfn or translated(), parameters)
    return {
        logical_id: {"Type": r["Type"], "Properties": builder.resolver.resolve(r.get("Properties") or {})}
        for logical_id, r in builder.resources.items()
        if "Condition" not in r or builder.resolver.condition(r["Condition"])
    }


def test_ec2_resources_exist_only_when_asked() -> None:
    fargate, ec2, no_image = _deployed(IMAGE), _deployed(EC2), _deployed({"BuildCapacity": "EC2"})
    assert {n: r["Type"] for n, r in ec2.items() if n not in fargate} == EC2_ONLY
    assert set(fargate) <= set(ec2)
    assert not set(EC2_ONLY) & set(no_image), "no worker image, no workers: nothing of EC2 capacity either"


def test_the_fargate_default_is_what_it_was() -> None:
    """Each property a FARGATE stack had before BuildCapacity existed, resolved as it deploys."""
    deployed = _deployed(IMAGE)
    assert deployed["BuildWorkerCluster"]["Properties"]["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    service = deployed["BuildWorkerService"]["Properties"]
    assert (service["LaunchType"], service["PlatformVersion"], service["DesiredCount"]) == ("FARGATE", "LATEST", 0)
    assert "CapacityProviderStrategy" not in service and service["Cluster"] == "longrun-builds"
    task = deployed["BuildWorkerTaskDefinition"]["Properties"]
    assert task["RequiresCompatibilities"] == ["FARGATE"] and task["EphemeralStorage"] == {"SizeInGiB": 50}
    assert [v["Name"] for v in task["Volumes"]] == ["workspaces"]
    (container,) = task["ContainerDefinitions"]
    assert container["MountPoints"] == [{"SourceVolume": "workspaces", "ContainerPath": "/mnt/efs"}]
    assert "BUILD_CACHE_DIR" not in {e["Name"] for e in container["Environment"]}
    target = deployed["BuildWorkerScalableTarget"]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 10)
    scale_in = deployed["BuildWorkerScaleInPolicy"]["Properties"]["StepScalingPolicyConfiguration"]
    assert scale_in["StepAdjustments"] == [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]


def test_ec2_capacity_runs_the_same_service_on_the_capacity_provider() -> None:
    deployed = _deployed({**EC2, "BuildWarmInstances": "2", "BuildWorkersMin": "1"})
    provider = str(_builder(translated(), EC2).ref("BuildCapacityProvider"))
    service = deployed["BuildWorkerService"]["Properties"]
    assert "LaunchType" not in service and "PlatformVersion" not in service
    assert service["CapacityProviderStrategy"] == [{"CapacityProvider": provider, "Weight": 1}]
    assert int(service["DesiredCount"]) == 1 and service["Cluster"] == "longrun-builds"
    assert "CapacityProviders" not in deployed["BuildWorkerCluster"]["Properties"]
    associations = deployed["BuildClusterCapacityProviders"]["Properties"]
    assert provider in associations["CapacityProviders"]
    task = deployed["BuildWorkerTaskDefinition"]["Properties"]
    assert task["RequiresCompatibilities"] == ["EC2"] and "EphemeralStorage" not in task
    assert {"Name": "build-cache", "Host": {"SourcePath": CACHE}} in task["Volumes"]
    (container,) = task["ContainerDefinitions"]
    assert {"SourceVolume": "build-cache", "ContainerPath": CACHE} in container["MountPoints"]
    assert {"Name": "BUILD_CACHE_DIR", "Value": CACHE} in container["Environment"]
    group = deployed["BuildInstanceGroup"]["Properties"]
    assert (int(group["MinSize"]), int(group["MaxSize"]), group["NewInstancesProtectedFromScaleIn"]) == (2, 10, True)
    assert "DesiredCapacity" not in group, "managed scaling owns the desired capacity"
    assert group["VPCZoneIdentifier"] == deployed["BuildWorkerService"]["Properties"]["NetworkConfiguration"][
        "AwsvpcConfiguration"]["Subnets"], "the instances sit in the workers' private subnets"  # fmt: skip
    scaling = deployed["BuildCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]
    assert scaling["ManagedScaling"]["Status"] == "ENABLED" and scaling["ManagedTerminationProtection"] == "ENABLED"


def test_the_instances_require_imdsv2_use_the_ecs_ami_and_join_the_build_cluster() -> None:
    deployed = _deployed(EC2)
    data = deployed["BuildInstanceLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }
    assert data["ImageId"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    assert data["SecurityGroupIds"] == deployed["BuildWorkerService"]["Properties"]["NetworkConfiguration"][
        "AwsvpcConfiguration"]["SecurityGroups"]  # fmt: skip
    assert all(m["Ebs"]["Encrypted"] is True for m in data["BlockDeviceMappings"])
    user_data = base64.b64decode(data["UserData"]).decode()
    assert "ECS_CLUSTER=longrun-builds\n" in user_data and "ECS_AWSVPC_BLOCK_IMDS=true" in user_data
    assert f"d {CACHE} 0711 root root" in user_data


def test_the_instance_role_joins_only_the_build_cluster() -> None:
    """Narrower than AmazonEC2ContainerServiceforEC2Role: no ECR, no logs, no other cluster (the template's comment)."""
    (policy,) = _deployed(EC2)["BuildInstanceRole"]["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not {a for a in actions if not a.startswith("ecs:")}, actions
    assert statements["JoinTheBuildCluster"]["Resource"] == "arn:aws:ecs:us-east-1:123456789012:cluster/longrun-builds"
    assert [s["Sid"] for s in statements.values() if s["Resource"] == "*"] == ["PollEndpoint"]


# ------------------------------------------------------------------------------------ AWS's create-time rules
def judge_build_capacity(deployed: dict[str, dict[str, Any]], providers_named: dict[str, str]) -> None:
    """The rules the local cloud applies when it creates these resources (longrun/local/ecs, autoscaling)."""
    of = {kind: {n: r["Properties"] for n, r in deployed.items() if r["Type"] == kind} for kind in
          {r["Type"] for r in deployed.values()}}  # fmt: skip
    for name, props in of.get("AWS::AutoScaling::AutoScalingGroup", {}).items():
        aws_rules.auto_scaling_group(name, props)
    for name, props in of.get("AWS::ApplicationAutoScaling::ScalableTarget", {}).items():
        aws_rules.scalable_target(name, props)
    for name, props in of.get("AWS::ECS::CapacityProvider", {}).items():
        aws_rules.capacity_provider(name, providers_named[name], props, of["AWS::AutoScaling::AutoScalingGroup"].get(
            "BuildInstanceGroup"))  # fmt: skip
    (task,) = of["AWS::ECS::TaskDefinition"].values()
    aws_rules.task_definition("BuildWorkerTaskDefinition", task)
    associated = {str(p): "FARGATE" if str(p).startswith("FARGATE") else "EC2"
                  for a in of.get("AWS::ECS::ClusterCapacityProviderAssociations", {}).values()
                  for p in a["CapacityProviders"]}  # fmt: skip
    aws_rules.ecs_service("BuildWorkerService", of["AWS::ECS::Service"]["BuildWorkerService"],
                          task["RequiresCompatibilities"], associated)  # fmt: skip


def _names(parameters: dict[str, Any]) -> dict[str, str]:
    builder = _builder(translated(), parameters)
    return {"BuildCapacityProvider": str(builder.ref("BuildCapacityProvider"))}


@pytest.mark.parametrize("parameters", [IMAGE, EC2, {**EC2, "BuildWarmInstances": "10", "BuildWorkersMin": "10"}],
                         ids=["fargate", "ec2", "ec2-all-warm"])  # fmt: skip
def test_the_build_capacity_passes_aws_create_time_rules(parameters: dict[str, Any]) -> None:
    judge_build_capacity(_deployed(parameters), _names(parameters))


def _planted(parameters: dict[str, Any], edit: Any) -> dict[str, dict[str, Any]]:
    deployed = copy.deepcopy(_deployed(parameters))
    edit(deployed)
    return deployed


def _props(name: str) -> Any:
    return lambda deployed: deployed[name]["Properties"]


@pytest.mark.parametrize(
    ("parameters", "edit", "rule"),
    [
        ({**EC2, "BuildWarmInstances": "11"}, lambda d: None, "MinSize above MaxSize"),
        ({**IMAGE, "BuildWorkersMin": "11"}, lambda d: None, "MinCapacity above MaxCapacity"),
        (
            EC2,
            lambda d: d["BuildInstanceGroup"]["Properties"].pop("NewInstancesProtectedFromScaleIn"),
            "managed termination protection on a group that does not protect its instances",
        ),
        (
            EC2,
            lambda d: d["BuildCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]["ManagedScaling"].update(
                Status="DISABLED"
            ),
            "managed termination protection without managed scaling",
        ),
        (
            EC2,
            lambda d: d["BuildCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]["ManagedScaling"].update(
                TargetCapacity=0
            ),
            "managed scaling target capacity",
        ),
        (
            EC2,
            lambda d: d["BuildWorkerService"]["Properties"].update(LaunchType="FARGATE"),
            "both a launch type and a capacity provider strategy",
        ),
        (
            EC2,
            lambda d: d["BuildWorkerTaskDefinition"]["Properties"].update(RequiresCompatibilities=["FARGATE"]),
            "no host path volume on Fargate",
        ),
        (
            EC2,
            lambda d: d["BuildWorkerTaskDefinition"]["Properties"]["Volumes"].pop(),
            None,
        ),  # without its cache volume the EC2 task is still valid; the next plant is the refused one
        (
            EC2,
            lambda d: (
                d["BuildWorkerTaskDefinition"]["Properties"]["Volumes"].pop(),
                d["BuildWorkerTaskDefinition"]["Properties"].update(RequiresCompatibilities=["FARGATE"]),
            ),
            "task definition not compatible with the service's capacity",
        ),
        (
            IMAGE,
            lambda d: d["BuildWorkerService"]["Properties"].update(LaunchType="EC2"),
            "task definition not compatible with the service's capacity",
        ),
    ],
    ids=[
        "warm-over-max",
        "min-over-max",
        "unprotected-instances",
        "no-managed-scaling",
        "target-0",
        "launch-type-and-strategy",
        "host-volume-on-fargate",
        "ec2-without-cache",
        "fargate-task-on-ec2",
        "fargate-task-ec2-launch",
    ],
)
def test_each_create_time_rule_refuses_its_planted_defect(
    parameters: dict[str, Any], edit: Any, rule: str | None
) -> None:
    deployed = _planted(parameters, edit)
    names = _names(parameters) if parameters.get("BuildCapacity") == "EC2" else {}
    if rule is None:
        judge_build_capacity(deployed, names)
        return
    with pytest.raises(AwsRefused) as refused:
        judge_build_capacity(deployed, names)
    assert refused.value.rule == rule and refused.value.doc.startswith("https://docs.aws.amazon.com/")


def test_a_capacity_provider_named_like_aws_own_is_refused() -> None:
    """CreateCapacityProvider: the name "can't be prefixed with "aws", "ecs", or "fargate"": a stack named ecs-…
    gets such a name from CloudFormation."""
    builder = _builder(translated(), EC2)
    builder.stack.name = "ecs-builds"
    name = str(builder.ref("BuildCapacityProvider"))
    assert name.startswith("ecs-builds-")
    with pytest.raises(AwsRefused, match="reserved prefix"):
        judge_build_capacity(_deployed(EC2), {"BuildCapacityProvider": name})


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("BuildCapacity", "EC3", "value not among AllowedValues"),
        ("BuildWarmInstances", "-1", "value outside MinValue"),
        ("BuildTargetCapacity", "101", "value outside MaxValue"),
        ("BuildInstanceType", "m7i.large", "value does not match AllowedPattern"),
        ("BuildWorkersMin", "two", "Number parameter not a number"),
    ],
)
def test_a_parameter_outside_its_constraints_is_refused_before_anything_is_made(
    name: str, value: str, rule: str
) -> None:
    with pytest.raises(AwsRefused) as refused:
        _builder(translated(), {**EC2, name: value})
    assert refused.value.resource == f"parameter {name}" and refused.value.rule == rule


def test_every_default_and_the_local_clouds_own_values_satisfy_their_constraints() -> None:
    for parameters in (
        {},
        EC2,
        {
            "BuildWorkerImage": "longrun-local",
            "BuildHeartbeatTimeoutSeconds": "10",
            "GitPrivateHosts": "127.0.0.1,localhost",
            "TrustedEventSources": "longrun.local",
        },
    ):
        _builder(translated(), parameters)
    assert len(_of_type(_builder(translated(), EC2), "AWS::ECS::CapacityProvider")) == 1
