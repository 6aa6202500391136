"""The template's functions, layers, permissions and SQS event source mappings: served by the local Lambda."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longrun.local import aws_rules
from longrun.local.awslambda.runtime import FunctionSpec
from longrun.local.cloudformation.engine import CannotEmulate, ResourceType, StackBuilder, Step

# Warm processes a function may have at once: what two shared cores hold. A function's reserved
# concurrency below it is honored (Lambda throttles the function there); above it, this is the cap.
LOCAL_POOL_SIZE = 8


def _pool_size(reserved: Any) -> int:
    return LOCAL_POOL_SIZE if reserved is None else min(LOCAL_POOL_SIZE, int(reserved))


@dataclass
class EventSourceSpec:
    """An SQS → Lambda event source mapping: what the local poller needs to act like Lambda's."""

    queue_url: str
    function: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False


def mounted(value: str, mounts: dict[str, Path]) -> str:
    """An environment value under a mount point (``/mnt/efs/...``, ``/opt``), pointed at the local directory."""
    for mount_point, directory in mounts.items():
        if value == mount_point or value.startswith(mount_point + "/"):
            return str(directory) + value[len(mount_point) :]
    return value


def _function(builder: StackBuilder, logical_id: str) -> FunctionSpec:
    props = builder.resolver.resolve(builder.props(logical_id))
    if logical_id not in builder.t.code_dirs:
        raise CannotEmulate(f"{logical_id}: the local cloud runs functions from a local CodeUri only")
    # Lambda mounts layers at /opt and EFS at LocalMountPath; a local process cannot, so values
    # of the environment that point under those mount points are pointed at the directories.
    mounts: dict[str, Path] = {}
    for layer_arn in props.get("Layers", []):
        layer_id = next((lid for lid, phys in builder.stack.physical.items() if phys == layer_arn), None)
        source = next(
            (d for sam_id, d in builder.t.layer_dirs.items() if layer_id and layer_id.startswith(sam_id)), None
        )
        if source is None:
            raise CannotEmulate(f"{logical_id}: layer {layer_arn} has no local ContentUri")
        mounts["/opt"] = source
    for fs in props.get("FileSystemConfigs", []):
        if fs["Arn"] not in builder.mounts:
            raise CannotEmulate(f"{logical_id}: file system {fs['Arn']} is not an access point of the stack")
        mounts[fs["LocalMountPath"]] = builder.mounts[fs["Arn"]]
    variables = (props.get("Environment") or {}).get("Variables") or {}
    environment = {key: mounted(str(value), mounts) for key, value in variables.items()}
    name = builder.stack.physical[logical_id]
    aws_rules.lambda_function(logical_id, props, name)
    return FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=builder.get_att(logical_id, "Arn"),
        handler=props["Handler"],
        code_dir=builder.t.code_dirs[logical_id],
        timeout=float(props.get("Timeout", 3)),
        memory=int(props.get("MemorySize", 128)),
        environment=environment,
        concurrency=_pool_size(props.get("ReservedConcurrentExecutions")),
    )


def _functions(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    """Every function's spec (after EFS: their mounts), then their reserved concurrency against the account's."""
    functions = by_type.get("AWS::Lambda::Function", [])
    for logical_id in functions:
        builder.stack.functions.append(_function(builder, logical_id))
    judge_reservations(builder, functions)


def judge_reservations(builder: StackBuilder, functions: list[str]) -> None:
    """The functions' reserved concurrency against the account's (``--account-concurrency``)."""
    reservations = {}
    for logical_id in functions:
        reserved = builder.resolver.resolve(builder.props(logical_id)).get("ReservedConcurrentExecutions")
        if reserved is not None:
            reservations[logical_id] = int(reserved)
    aws_rules.reserved_concurrency(reservations, builder.account_concurrency)


def _event_source(builder: StackBuilder, logical_id: str) -> EventSourceSpec:
    props = builder.resolver.resolve(builder.props(logical_id))
    arn = str(props["EventSourceArn"])
    if ":sqs:" not in arn:
        raise CannotEmulate(f"{logical_id}: only SQS event sources are emulated, not {arn}")
    queue_url = builder.aws("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
    _judge_event_source(builder, logical_id, props, queue_url)
    return EventSourceSpec(
        queue_url=queue_url,
        function=str(props["FunctionName"]).rsplit(":", 1)[-1],
        batch_size=int(props.get("BatchSize", 10)),
        batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
    )


def _judge_event_source(builder: StackBuilder, logical_id: str, props: dict[str, Any], queue_url: str) -> None:
    """CreateEventSourceMapping's checks (aws_rules), with the queue's attributes and the function's timeout."""
    attributes = builder.aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    function = str(props["FunctionName"]).rsplit(":", 1)[-1]
    spec = next((f for f in builder.stack.functions if f.name == function), None)
    if spec is None:
        raise CannotEmulate(f"{logical_id}: function {function} is not in the stack")
    aws_rules.sqs_event_source_mapping(
        logical_id,
        props,
        fifo=attributes.get("FifoQueue") == "true",
        visibility_timeout=int(attributes.get("VisibilityTimeout", aws_rules.SQS_DEFAULT_VISIBILITY_TIMEOUT)),
        function_timeout=int(spec.timeout),
    )


def _event_sources(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    for logical_id in by_type.get("AWS::Lambda::EventSourceMapping", []):
        builder.stack.event_sources.append(_event_source(builder, logical_id))


TYPES = (
    ResourceType(
        "AWS::Lambda::Function",  # warm worker processes (awslambda.runtime)
        created_in_moto=False,
        ref=lambda b, lid: b.name(lid, "FunctionName"),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:lambda:{b.arn_prefix()}:function:{ref}"},
    ),
    ResourceType(
        "AWS::Lambda::LayerVersion",  # its directory, in place of /opt
        created_in_moto=False,
        ref=lambda b, lid: f"arn:aws:lambda:{b.arn_prefix()}:layer:{b.name(lid, 'LayerName')}:1",
    ),
    # The local API fronts may invoke any function of the stack.
    ResourceType("AWS::Lambda::Permission", created_in_moto=False),
    ResourceType("AWS::Lambda::EventSourceMapping", created_in_moto=False),  # polled by awslambda.event_sources
)
STEPS = (
    Step(110, "Lambda functions", _functions),
    Step(120, "SQS event source mappings", _event_sources),
)
