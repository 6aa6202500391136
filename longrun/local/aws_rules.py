"""Limits AWS enforces when a Lambda function, an event source mapping, a state machine or an API
integration is created, and moto does not: one set of rules for the local cloud and the tests.

Each function takes a resource's resolved properties (intrinsics already resolved, as the local
cloud's StackBuilder has them) and raises :class:`AwsRefused` naming the resource, the rule and the
AWS page that states it, where the create call on AWS would fail and roll the stack back. Only
rules AWS checks at create time are here; run-time limits (payload sizes, throttling) are not.
docs/judges.md lists every rule with its page and where it is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from longrun.local.refusals import AwsRefused

LAMBDA_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
LAMBDA_CONCURRENCY = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"
LAMBDA_FUNCTION_NAME = "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html"
ESM_BATCHING = "https://docs.aws.amazon.com/lambda/latest/dg/API_EventSourceMappingConfiguration.html"
ESM_SQS = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html"
ESM_SQS_VISIBILITY = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html"
SFN_QUOTAS = "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html"
ASL_SPEC = "https://states-language.net/spec.html"
REST_QUOTAS = (
    "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html"
)
WEBSOCKET_INTEGRATION = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigatewayv2-integration.html"
)

# Lambda quotas page: "Function timeout 900 seconds (15 minutes)"; "Function memory allocation 128 MB
# to 10,240 MB, in 1-MB increments"; "Function environment variables 4 KB, for all environment
# variables associated with the function, in aggregate"; "Function layers five layers".
TIMEOUT_RANGE = (1, 900)
MEMORY_RANGE = (128, 10_240)
ENVIRONMENT_BYTES = 4 * 1024
MAX_LAYERS = 5
# CreateFunction: "If you specify only the function name, it is limited to 64 characters in length."
FUNCTION_NAME_LENGTH = 64
# "You can reserve up to the Unreserved account concurrency value that is shown, minus 100 for
# functions that don't have reserved concurrency." 1000 is the default quota; new accounts often get 10.
UNRESERVED_MINIMUM = 100
DEFAULT_ACCOUNT_CONCURRENCY = 1000
NEW_ACCOUNT_CONCURRENCY = 10
# EventSourceMappingConfiguration: BatchSize "Minimum value of 1. Maximum value of 10000", "When you
# set BatchSize to a value greater than 10, you must set MaximumBatchingWindowInSeconds to at least 1";
# MaximumBatchingWindowInSeconds "any value from 0 seconds to 300 seconds". The SQS parameters page:
# "For standard queues, the maximum is 10,000. For FIFO queues, the maximum is 10." and "Batching
# window is not supported for FIFO queues".
BATCH_SIZE_RANGE = (1, 10_000)
FIFO_MAX_BATCH = 10
UNBATCHED_MAX_BATCH = 10
BATCHING_WINDOW_RANGE = (0, 300)
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30  # seconds: SQS's default for a queue that sets none
# Step Functions quotas: "Names of state machines, executions, and activity tasks must not exceed 80
# characters in length"; "Maximum size of state machine definition 1 MB" (a hard quota).
NAME_LENGTH = 80
DEFINITION_BYTES = 1_048_576
# REST API quotas: "Integration timeout 50 milliseconds - 29 seconds for all integration types"
# (raisable for Regional and private APIs by a quota increase); the WebSocket integration's
# TimeoutInMillis: "between 50 and 29,000 milliseconds for WebSocket APIs".
INTEGRATION_TIMEOUT_MS = (50, 29_000)


def _in_range(resource: str, rule: str, value: Any, bounds: tuple[int, int], doc: str, unit: str = "") -> None:
    low, high = bounds
    if not low <= int(value) <= high:
        raise AwsRefused(resource, rule, f"{value}{unit} is outside {low}-{high}{unit}", doc=doc)


# --- Lambda functions --------------------------------------------------------------------------------


def environment_size(variables: Mapping[str, Any]) -> int:
    """Bytes of every key and value, in aggregate: what the 4 KB quota counts."""
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in variables.items())


def lambda_function(resource: str, props: Mapping[str, Any], name: str) -> None:
    """CreateFunction's limits on one function: timeout, memory, environment, layers, name."""
    _in_range(resource, "Lambda function timeout", props.get("Timeout", 3), TIMEOUT_RANGE, LAMBDA_QUOTAS, " s")
    _in_range(resource, "Lambda function memory", props.get("MemorySize", 128), MEMORY_RANGE, LAMBDA_QUOTAS, " MB")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    size = environment_size(variables)
    if size > ENVIRONMENT_BYTES:
        raise AwsRefused(resource, "Lambda environment variables over 4 KB",
                         f"{len(variables)} variables take {size} bytes", doc=LAMBDA_QUOTAS)  # fmt: skip
    layers = props.get("Layers") or []
    if len(layers) > MAX_LAYERS:
        raise AwsRefused(resource, "Lambda layers over five", f"{len(layers)} layers", doc=LAMBDA_QUOTAS)
    if len(name) > FUNCTION_NAME_LENGTH:
        raise AwsRefused(resource, "Lambda function name over 64 characters",
                         f"{name!r} has {len(name)}", doc=LAMBDA_FUNCTION_NAME)  # fmt: skip


def reserved_concurrency(reservations: Mapping[str, int], account_concurrency: int) -> None:
    """The functions' ReservedConcurrentExecutions together must leave 100 of the account unreserved.

    ``reservations`` maps each reserving function's logical id to its reservation, in creation
    order; the one that takes the unreserved part below 100 is the one AWS refuses.
    """
    reserved = 0
    for resource, value in reservations.items():
        reserved += int(value)
        if value and account_concurrency - reserved < UNRESERVED_MINIMUM:
            every = ", ".join(f"{r} {v}" for r, v in reservations.items())
            raise AwsRefused(
                resource,
                "reserved concurrency leaves under 100 unreserved",
                f"reservations ({every}) reach {reserved} of the account's {account_concurrency}; at most "
                f"{max(0, account_concurrency - UNRESERVED_MINIMUM)} can be reserved",
                doc=LAMBDA_CONCURRENCY,
            )


# --- SQS event source mappings -----------------------------------------------------------------------


def sqs_event_source_mapping(
    resource: str, props: Mapping[str, Any], *, fifo: bool, visibility_timeout: int, function_timeout: int
) -> None:
    """CreateEventSourceMapping on an SQS queue: batch size and window, and the queue's visibility timeout."""
    batch = int(props.get("BatchSize", 10))
    window = int(props.get("MaximumBatchingWindowInSeconds", 0))
    _in_range(resource, "SQS batch size", batch, BATCH_SIZE_RANGE, ESM_BATCHING)
    _in_range(resource, "batching window", window, BATCHING_WINDOW_RANGE, ESM_BATCHING, " s")
    if fifo and batch > FIFO_MAX_BATCH:
        raise AwsRefused(resource, "FIFO batch size over 10", f"BatchSize {batch} on a FIFO queue", doc=ESM_SQS)
    if fifo and window:
        raise AwsRefused(resource, "no batching window on FIFO queues",
                         f"MaximumBatchingWindowInSeconds {window} on a FIFO queue", doc=ESM_SQS)  # fmt: skip
    if batch > UNBATCHED_MAX_BATCH and window < 1:
        raise AwsRefused(resource, "batch size over 10 needs a batching window",
                         f"BatchSize {batch} with MaximumBatchingWindowInSeconds {window}; set it to at least 1",
                         doc=ESM_BATCHING)  # fmt: skip
    if function_timeout > visibility_timeout:
        raise AwsRefused(resource, "queue visibility timeout under the function's timeout",
                         f"the queue's VisibilityTimeout {visibility_timeout} s < the function's Timeout "
                         f"{function_timeout} s", doc=ESM_SQS_VISIBILITY)  # fmt: skip


# --- Step Functions ----------------------------------------------------------------------------------


def _states(states: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those of Parallel branches and Map processors included."""
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches") or []:
            yield from _states(branch.get("States") or {})
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor.get("States") or {})


def step_functions_name(resource: str, kind: str, value: str) -> None:
    """A state machine's or an execution's name: at most 80 characters."""
    if len(value) > NAME_LENGTH:
        raise AwsRefused(resource, f"{kind} name over 80 characters", f"{value!r} has {len(value)}", doc=SFN_QUOTAS)


def state_machine(resource: str, machine_name: str, definition: str) -> None:
    """CreateStateMachine: the name, the definition's size, and each Task's static timeouts.

    ``definition`` is the text Step Functions receives (DefinitionSubstitutions applied). The ASL
    says both timeouts "MUST be positive, non-zero integers" and "the HeartbeatSeconds interval
    MUST be smaller than the TimeoutSeconds value"; only values written in the definition are
    judged (a ``...Path`` is read at run time).
    """
    step_functions_name(resource, "state machine", machine_name)
    size = len(definition.encode())
    if size > DEFINITION_BYTES:
        raise AwsRefused(resource, "definition over 1 MB", f"{size} bytes", doc=SFN_QUOTAS)
    for state_name, state in _states(json.loads(definition).get("States") or {}):
        if state.get("Type") != "Task":
            continue
        timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
        for field, value in (("TimeoutSeconds", timeout), ("HeartbeatSeconds", heartbeat)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise AwsRefused(resource, f"{field} not a positive integer", f"{field} {value!r}",
                                 state=state_name, doc=ASL_SPEC)  # fmt: skip
        if isinstance(timeout, int) and isinstance(heartbeat, int) and heartbeat >= timeout:
            raise AwsRefused(resource, "HeartbeatSeconds not under TimeoutSeconds",
                             f"HeartbeatSeconds {heartbeat} >= TimeoutSeconds {timeout}", state=state_name,
                             doc=ASL_SPEC)  # fmt: skip


# --- API Gateway -------------------------------------------------------------------------------------


def rest_integration_timeout(resource: str, where: str, millis: Any) -> None:
    """A REST integration's ``timeoutInMillis`` (when set): 50 ms to 29 s at the default quota."""
    if millis is not None:
        _in_range(f"{resource} {where}", "REST integration timeout", millis, INTEGRATION_TIMEOUT_MS, REST_QUOTAS, " ms")


def websocket_integration_timeout(resource: str, millis: Any) -> None:
    """A WebSocket integration's ``TimeoutInMillis`` (when set): 50 ms to 29 s."""
    if millis is not None:
        _in_range(resource, "WebSocket integration timeout", millis, INTEGRATION_TIMEOUT_MS, WEBSOCKET_INTEGRATION,
                  " ms")  # fmt: skip


# --- template parameters -----------------------------------------------------------------------------

CFN_PARAMETERS = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html"


def template_parameter(name: str, spec: Mapping[str, Any], value: Any) -> None:
    """A parameter's value against its constraints, as CloudFormation checks them before it creates anything.

    The parameters page: AllowedValues "an array containing the list of values allowed for the
    parameter", AllowedPattern "a regular expression that represents the patterns to allow for String
    or CommaDelimitedList types" (each item of a list), MinValue/MaxValue for Number types,
    MinLength/MaxLength for String types. AWS-specific and SSM types are checked against the account,
    which the local cloud has not: they are left alone.
    """
    kind = str(spec.get("Type", "String"))
    resource = f"parameter {name}"
    items = value if isinstance(value, list) else [value]
    if kind == "CommaDelimitedList" and not isinstance(value, list):
        items = str(value).split(",")
    allowed = spec.get("AllowedValues")
    if allowed is not None and any(str(item) not in {str(a) for a in allowed} for item in items):
        raise AwsRefused(resource, "value not among AllowedValues", f"{value!r} is not one of {list(allowed)}",
                         doc=CFN_PARAMETERS)  # fmt: skip
    if kind == "Number":
        try:
            number = float(str(value))
        except ValueError:
            raise AwsRefused(resource, "Number parameter not a number", f"{value!r}", doc=CFN_PARAMETERS) from None
        for bound, ok in (("MinValue", lambda b: number >= b), ("MaxValue", lambda b: number <= b)):
            if bound in spec and not ok(float(spec[bound])):
                raise AwsRefused(resource, f"value outside {bound}", f"{value} against {bound} {spec[bound]}",
                                 doc=CFN_PARAMETERS)  # fmt: skip
    if kind in ("String", "CommaDelimitedList"):
        pattern = spec.get("AllowedPattern")
        if pattern is not None and any(re.fullmatch(str(pattern), str(item)) is None for item in items):
            raise AwsRefused(resource, "value does not match AllowedPattern", f"{value!r} against {pattern}",
                             doc=CFN_PARAMETERS)  # fmt: skip
        for bound, ok in (("MinLength", lambda b: len(str(value)) >= b), ("MaxLength", lambda b: len(str(value)) <= b)):
            if bound in spec and not ok(int(spec[bound])):
                raise AwsRefused(resource, f"length outside {bound}", f"{len(str(value))} against {spec[bound]}",
                                 doc=CFN_PARAMETERS)  # fmt: skip


# --- build capacity: Auto Scaling groups, scalable targets, ECS ---------------------------------------

ASG_CREATE = "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html"
AAS_REGISTER = "https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html"
ECS_CAPACITY_PROVIDER = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCapacityProvider.html"
ECS_ASG_PROVIDER = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AutoScalingGroupProvider.html"
ECS_MANAGED_SCALING = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ManagedScaling.html"
ECS_CREATE_SERVICE = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html"
ECS_TASK_DEFINITION = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html"
ECS_BIND_MOUNTS = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html"
# CreateCapacityProvider: the name "can't be prefixed with "aws", "ecs", or "fargate"". ManagedScaling:
# targetCapacity "Valid Range: Minimum value of 1. Maximum value of 100", minimumScalingStepSize and
# maximumScalingStepSize 1 to 10,000.
CAPACITY_PROVIDER_RESERVED_PREFIXES = ("aws", "ecs", "fargate")
TARGET_CAPACITY_RANGE = (1, 100)
SCALING_STEP_RANGE = (1, 10_000)


def auto_scaling_group(resource: str, props: Mapping[str, Any]) -> None:
    """CreateAutoScalingGroup: MinSize <= DesiredCapacity (when given) <= MaxSize."""
    low, high = int(props["MinSize"]), int(props["MaxSize"])
    if low > high:
        raise AwsRefused(resource, "MinSize above MaxSize", f"MinSize {low} > MaxSize {high}", doc=ASG_CREATE)
    desired = props.get("DesiredCapacity")
    if desired is not None and not low <= int(desired) <= high:
        raise AwsRefused(resource, "DesiredCapacity outside MinSize-MaxSize", f"{desired} outside {low}-{high}",
                         doc=ASG_CREATE)  # fmt: skip


def scalable_target(resource: str, props: Mapping[str, Any]) -> None:
    """RegisterScalableTarget: the minimum capacity may not exceed the maximum."""
    low, high = int(props["MinCapacity"]), int(props["MaxCapacity"])
    if low > high:
        raise AwsRefused(resource, "MinCapacity above MaxCapacity", f"MinCapacity {low} > MaxCapacity {high}",
                         doc=AAS_REGISTER)  # fmt: skip


def capacity_provider(resource: str, name: str, props: Mapping[str, Any], group: Mapping[str, Any] | None) -> None:
    """CreateCapacityProvider over an Auto Scaling group (``group``: its resolved properties, when in the stack).

    Managed termination protection "must also be used" with managed scaling, and needs "the Auto
    Scaling group and each instance in the Auto Scaling group" protected from scale-in: ECS refuses a
    provider whose group does not protect new instances.
    """
    if name.lower().startswith(CAPACITY_PROVIDER_RESERVED_PREFIXES):
        raise AwsRefused(resource, "capacity provider name with a reserved prefix",
                         f"{name!r} starts with one of {CAPACITY_PROVIDER_RESERVED_PREFIXES}",
                         doc=ECS_CAPACITY_PROVIDER)  # fmt: skip
    provider = props.get("AutoScalingGroupProvider") or {}
    scaling = provider.get("ManagedScaling") or {}
    scales = str(scaling.get("Status", "DISABLED")) == "ENABLED"
    if "TargetCapacity" in scaling:
        _in_range(resource, "managed scaling target capacity", scaling["TargetCapacity"], TARGET_CAPACITY_RANGE,
                  ECS_MANAGED_SCALING, " %")  # fmt: skip
    steps = [int(scaling[k]) for k in ("MinimumScalingStepSize", "MaximumScalingStepSize") if k in scaling]
    for step in steps:
        _in_range(resource, "managed scaling step size", step, SCALING_STEP_RANGE, ECS_MANAGED_SCALING)
    if len(steps) == 2 and steps[0] > steps[1]:
        raise AwsRefused(resource, "minimum scaling step above the maximum", f"{steps[0]} > {steps[1]}",
                         doc=ECS_MANAGED_SCALING)  # fmt: skip
    if str(provider.get("ManagedTerminationProtection", "DISABLED")) != "ENABLED":
        return
    if not scales:
        raise AwsRefused(resource, "managed termination protection without managed scaling",
                         "ManagedTerminationProtection ENABLED needs ManagedScaling Status ENABLED",
                         doc=ECS_ASG_PROVIDER)  # fmt: skip
    if group is not None and str(group.get("NewInstancesProtectedFromScaleIn", False)).lower() != "true":
        raise AwsRefused(
            resource,
            "managed termination protection on a group that does not protect its instances",
            "the Auto Scaling group needs NewInstancesProtectedFromScaleIn: true",
            doc=ECS_ASG_PROVIDER,
        )


def task_definition(resource: str, props: Mapping[str, Any]) -> None:
    """RegisterTaskDefinition for Fargate: awsvpc, task-level CPU and memory, no host path volumes."""
    if "FARGATE" not in (props.get("RequiresCompatibilities") or []):
        return
    if props.get("NetworkMode") != "awsvpc":
        raise AwsRefused(resource, "Fargate tasks need the awsvpc network mode",
                         f"NetworkMode {props.get('NetworkMode')!r}", doc=ECS_TASK_DEFINITION)  # fmt: skip
    for key in ("Cpu", "Memory"):
        if not props.get(key):
            raise AwsRefused(resource, f"Fargate tasks need a task-level {key}", f"no {key}", doc=ECS_TASK_DEFINITION)
    for volume in props.get("Volumes") or []:
        if (volume.get("Host") or {}).get("SourcePath"):
            raise AwsRefused(resource, "no host path volume on Fargate",
                             f"volume {volume.get('Name')} has Host.SourcePath {volume['Host']['SourcePath']}",
                             doc=ECS_BIND_MOUNTS)  # fmt: skip


def ecs_service(
    resource: str, props: Mapping[str, Any], compatibilities: list[str], providers: Mapping[str, str]
) -> None:
    """CreateService: a launch type or a capacity provider strategy, never both, each the task definition's.

    ``compatibilities`` is the task definition's RequiresCompatibilities; ``providers`` maps each
    capacity provider the stack associates with the cluster (by name) to its kind, FARGATE or EC2.
    """
    strategy = props.get("CapacityProviderStrategy") or []
    launch_type = props.get("LaunchType")
    if strategy and launch_type:
        raise AwsRefused(resource, "both a launch type and a capacity provider strategy",
                         "if a capacityProviderStrategy is specified, the launchType parameter must be omitted",
                         doc=ECS_CREATE_SERVICE)  # fmt: skip
    wanted = {str(launch_type)} if launch_type else set()
    for item in strategy:
        name = str(item.get("CapacityProvider"))
        kind = "FARGATE" if name in ("FARGATE", "FARGATE_SPOT") else providers.get(name)
        if kind is None:
            raise AwsRefused(
                resource,
                "capacity provider not associated with the cluster",
                f"{name!r} is not among the cluster's capacity providers",
                doc=ECS_CREATE_SERVICE,
            )
        wanted.add(kind)
    missing = sorted(wanted - {str(c) for c in compatibilities})
    if missing:
        raise AwsRefused(resource, "task definition not compatible with the service's capacity",
                         f"the service runs on {missing}, its task definition requires {compatibilities}",
                         doc=ECS_TASK_DEFINITION)  # fmt: skip
