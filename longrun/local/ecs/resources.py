"""The template's ECS cluster, task definitions and services: each service's tasks run as local processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longrun.local import aws_rules
from longrun.local.awslambda.resources import mounted
from longrun.local.cloudformation.engine import CannotEmulate, ResourceType, StackBuilder, Step, creates

# Where the worker image (infra/worker/Dockerfile) puts this repository's code.
IMAGE_ROOT = "/app"
# A task definition's host volume (an EC2 instance's directory) is this directory of the data dir:
# one "instance" for every local task, kept from one `longrun local up` to the next like a disk.
HOST_VOLUMES = "ec2-host"


@dataclass
class ServiceSpec:
    """An ECS service's container, as the local cloud runs it: a process per task."""

    logical_id: str
    name: str
    command: list[str]
    environment: dict[str, str]
    scales: bool = False  # the template scales it (AWS only: the local pool is fixed)


def _service(builder: StackBuilder, logical_id: str) -> ServiceSpec:
    """The service's task definition: one container, its EFS volumes and the image's /app mapped here."""
    props = builder.resolver.resolve(builder.props(logical_id))
    task_id = next((lid for lid, phys in builder.stack.physical.items() if phys == str(props["TaskDefinition"])), None)
    if task_id is None:
        raise CannotEmulate(f"{logical_id}: its task definition is not in the template")
    task = builder.resolver.resolve(builder.props(task_id))
    containers = task.get("ContainerDefinitions") or []
    if len(containers) != 1:
        raise CannotEmulate(f"{task_id}: the local cloud runs task definitions of one container")
    container = containers[0]
    volumes: dict[str, Path] = {}
    aws_rules.task_definition(task_id, task)
    aws_rules.ecs_service(logical_id, props, list(task.get("RequiresCompatibilities") or []), _providers(builder))
    for volume in task.get("Volumes") or []:
        source = (volume.get("Host") or {}).get("SourcePath")
        if source:
            volumes[volume["Name"]] = builder.data_dir / HOST_VOLUMES / str(source).lstrip("/")
            volumes[volume["Name"]].mkdir(parents=True, exist_ok=True)
            continue
        efs = volume.get("EFSVolumeConfiguration")
        if efs is None:
            raise CannotEmulate(f"{task_id}: volume {volume.get('Name')} is neither an EFS nor a host volume")
        access_point = str((efs.get("AuthorizationConfig") or {}).get("AccessPointId", ""))
        directory = next((d for arn, d in builder.mounts.items() if arn.endswith("/" + access_point)), None)
        if directory is None:
            raise CannotEmulate(f"{task_id}: volume {volume['Name']} is not an access point of the stack")
        volumes[volume["Name"]] = directory
    mounts = {m["ContainerPath"]: volumes[m["SourceVolume"]] for m in container.get("MountPoints") or []}
    mounts[IMAGE_ROOT] = builder.t.base_dir.parent  # the repository: infra/ is the template's directory
    pairs = container.get("Environment") or []
    environment = {pair["Name"]: mounted(str(pair["Value"]), mounts) for pair in pairs}
    return ServiceSpec(
        logical_id=logical_id,
        name=str(builder.stack.physical[logical_id]).rsplit("/", 1)[-1],
        command=[str(part) for part in container.get("Command") or []],
        environment=environment,
    )


def _providers(builder: StackBuilder) -> dict[str, str]:
    """The capacity providers the stack associates with its clusters: name → FARGATE or EC2 (an Auto Scaling group)."""
    out: dict[str, str] = {}
    for logical_id, resource in builder.resources.items():
        kind = resource["Type"]
        if kind != "AWS::ECS::ClusterCapacityProviderAssociations" or logical_id not in builder.stack.physical:
            continue
        for name in builder.resolver.resolve(builder.props(logical_id)).get("CapacityProviders") or []:
            out[str(name)] = "FARGATE" if name in ("FARGATE", "FARGATE_SPOT") else "EC2"
    return out


def _check_capacity_provider(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    """CreateCapacityProvider's rules, with its Auto Scaling group's properties when the stack has it."""
    group_name = str((props.get("AutoScalingGroupProvider") or {}).get("AutoScalingGroupArn", ""))
    group_id = next((lid for lid, phys in builder.stack.physical.items() if phys == group_name), None)
    group = builder.resolver.resolve(builder.props(group_id)) if group_id else None
    aws_rules.capacity_provider(logical_id, str(builder.stack.physical[logical_id]), props, group)


def _check_scalable_target(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    aws_rules.scalable_target(logical_id, props)


def _services(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    scaled = {
        str(builder.resolver.resolve(builder.props(t)).get("ResourceId", "")).rsplit("/", 1)[-1]
        for t in by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [])
    }
    for logical_id in by_type.get("AWS::ECS::Service", []):
        service = _service(builder, logical_id)
        service.scales = service.name in scaled
        builder.stack.services.append(service)


TYPES = (
    ResourceType(
        "AWS::ECS::Cluster",  # the workers of its services run as local processes
        created_in_moto=False,
        ref=lambda b, lid: b.name(lid, "ClusterName", 255),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:ecs:{b.arn_prefix()}:cluster/{ref}"},
    ),
    ResourceType(
        "AWS::ECS::TaskDefinition",  # read for its container's command, environment and EFS volumes
        created_in_moto=False,
        ref=lambda b, lid: f"arn:aws:ecs:{b.arn_prefix()}:task-definition/{b.name(lid, 'Family', 255)}:1",
    ),
    ResourceType(
        "AWS::ECS::Service",  # `longrun local up --build-workers N` processes (ServiceSpec)
        created_in_moto=False,
        ref=lambda b, lid: f"arn:aws:ecs:{b.arn_prefix()}:service/{b.name(lid, 'ServiceName', 255)}",
        attributes={"Name": lambda b, lid, ref: str(ref).rsplit("/", 1)[-1]},
    ),
    # BuildCapacity EC2: the instances' capacity provider and the cluster's association with it,
    # judged at creation (aws_rules.capacity_provider, ecs_service); no instance runs locally.
    ResourceType(
        "AWS::ECS::CapacityProvider",
        created_in_moto=False,
        ref=lambda b, lid: b.name(lid, "Name", 255),
    ),
    ResourceType(
        "AWS::ECS::ClusterCapacityProviderAssociations",  # its Ref is the cluster's name
        created_in_moto=False,
        ref=lambda b, lid: b.resolver.resolve(b.props(lid)["Cluster"]),
    ),
    # Scaling on the queue's depth is AWS's; the local pool keeps its fixed size (said at start).
    ResourceType("AWS::ApplicationAutoScaling::ScalableTarget", created_in_moto=False),
    ResourceType("AWS::ApplicationAutoScaling::ScalingPolicy", created_in_moto=False),
)
STEPS = (
    creates(126, "AWS::ECS::CapacityProvider", _check_capacity_provider),
    creates(127, "AWS::ApplicationAutoScaling::ScalableTarget", _check_scalable_target),
    Step(130, "ECS services", _services),
)
