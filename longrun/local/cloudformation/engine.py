"""Creating the stack of ``infra/template.yaml`` in the local cloud: a small CloudFormation engine.

Each resource type is either created in moto through its AWS API (tables, buckets, state
machines, roles, log groups, the token secret), or served by the local cloud itself (Lambda
functions and layers, both API Gateways, EFS as a directory, the VPC's security groups). A type
that is neither is refused with an error naming it: nothing is skipped silently.

The engine knows no service: each service's ``resources`` module (:data:`RESOURCE_MODULES`,
``longrun/local/<service>/resources.py``) declares its types (:class:`ResourceType`: how a ``Ref``
and each ``Fn::GetAtt`` answer, whether moto creates it) and the steps that create or serve them
(:class:`Step`, run in the order of their ``order``). The engine names every resource as
CloudFormation would, resolves the intrinsics and runs the steps; a new resource type is a record
in its service's module.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longrun.local import aws_rules
from longrun.local.cloudformation.intrinsics import Resolver, Unsupported
from longrun.local.cloudformation.template import Translated
from longrun.local.refusals import AwsRefused

if TYPE_CHECKING:
    from longrun.local.apigateway.resources import RestApiSpec, WebSocketApiSpec
    from longrun.local.awslambda.resources import EventSourceSpec
    from longrun.local.awslambda.runtime import FunctionSpec
    from longrun.local.ecs.resources import ServiceSpec

ACCOUNT_ID = "123456789012"

# The services whose resources module declares TYPES and STEPS, in no particular order (steps have theirs).
RESOURCE_MODULES = (
    "longrun.local.iam.resources",
    "longrun.local.logs.resources",
    "longrun.local.dynamodb.resources",
    "longrun.local.sqs.resources",
    "longrun.local.s3.resources",
    "longrun.local.events.resources",
    "longrun.local.stepfunctions.resources",
    "longrun.local.sns.resources",
    "longrun.local.cloudwatch.resources",
    "longrun.local.efs.resources",
    "longrun.local.ec2.resources",
    "longrun.local.autoscaling.resources",
    "longrun.local.awslambda.resources",
    "longrun.local.ecs.resources",
    "longrun.local.apigateway.resources",
    "longrun.local.apigateway.domains",
    "longrun.local.route53.resources",
)


class CannotEmulate(Exception):
    """The template names something the local cloud does not emulate."""


@dataclass(frozen=True)
class ResourceType:
    """One CloudFormation resource type: what ``Ref`` and ``Fn::GetAtt`` return, and who makes it."""

    name: str  # "AWS::DynamoDB::Table"
    created_in_moto: bool  # else served by the local cloud itself (or nothing to serve on loopback)
    # The physical id ``Ref`` returns; None: an id of the type's kind (``id_prefix`` and a hash).
    ref: Callable[[StackBuilder, str], Any] | None = None
    id_prefix: str = ""
    # GetAtt attribute → its value, from the builder, the logical id and the resource's Ref.
    attributes: Mapping[str, Callable[[StackBuilder, str, Any], Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """Part of creating the stack: run once, in ``order``, with the logical ids of each type present."""

    order: int
    name: str
    run: Callable[[StackBuilder, dict[str, list[str]]], None]


def creates(order: int, kind: str, create: Callable[[StackBuilder, str, dict[str, Any]], None]) -> Step:
    """A step that creates each resource of ``kind`` with its resolved properties, in template order."""

    def run(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
        for logical_id in by_type.get(kind, []):
            create(builder, logical_id, builder.resolver.resolve(builder.props(logical_id)))

    return Step(order, f"create {kind}", run)


@dataclass(frozen=True)
class Catalogue:
    types: dict[str, ResourceType]
    steps: tuple[Step, ...]


@functools.cache
def catalogue() -> Catalogue:
    """Every service's resource types and steps (imported on first use: a service module may import moto's names)."""
    types: dict[str, ResourceType] = {}
    steps: list[Step] = []
    for module_name in RESOURCE_MODULES:
        module = importlib.import_module(module_name)
        for kind in module.TYPES:
            if kind.name in types:
                raise ValueError(f"{kind.name} is declared twice (again in {module_name})")
            types[kind.name] = kind
        steps.extend(module.STEPS)
    return Catalogue(types, tuple(sorted(steps, key=lambda step: step.order)))


RULES = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html"


def short_id(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Stack:
    name: str
    region: str
    functions: list[FunctionSpec] = field(default_factory=list)
    rest_api: RestApiSpec | None = None
    websocket_api: WebSocketApiSpec | None = None
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id → ARN
    outputs: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    efs_root: Path | None = None
    event_sources: list[EventSourceSpec] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)

    def api_functions(self) -> set[str]:
        """Names of the functions a client waits on: API integrations and authorizers."""
        names: set[str] = set()
        if self.rest_api:
            names |= {route.function for route in self.rest_api.routes if route.function}
            names |= {authorizer.function for authorizer in self.rest_api.authorizers.values()}
        if self.websocket_api:
            names |= set(self.websocket_api.routes.values())
            if self.websocket_api.connect_authorizer:
                names.add(self.websocket_api.connect_authorizer)
        return names


class StackBuilder:
    """Names every resource as CloudFormation would, then creates it."""

    def __init__(
        self,
        translated: Translated,
        *,
        stack_name: str,
        region: str,
        parameters: dict[str, Any],
        data_dir: Path,
        websocket_management_base: str,
        aws: Any,
        account_concurrency: int = aws_rules.DEFAULT_ACCOUNT_CONCURRENCY,
    ) -> None:
        self.t = translated
        self.catalogue = catalogue()
        self.resources: dict[str, dict[str, Any]] = translated.template.get("Resources", {})
        self.stack = Stack(name=stack_name, region=region)
        self.data_dir = data_dir
        self.ws_management_base = websocket_management_base
        self.aws = aws  # a callable: service name → boto3 client against moto
        self.account_concurrency = account_concurrency  # the Lambda quota reservations are judged against
        self.redrives: list[tuple[str, str]] = []  # (queue URL, RedrivePolicy) not applied yet (sqs)
        self.mounts: dict[str, Path] = {}  # EFS access point ARN → its directory (efs)
        self._check_types()
        self.params = self._parameters(parameters)
        self.resolver = Resolver(
            parameters=self.params,
            conditions=translated.template.get("Conditions", {}),
            ref=self.ref,
            get_att=self.get_att,
        )

    # --- names --------------------------------------------------------------------------------

    def _check_types(self) -> None:
        unknown = sorted(
            f"{logical_id} ({r['Type']})"
            for logical_id, r in self.resources.items()
            if r["Type"] not in self.catalogue.types
        )
        if unknown:
            raise CannotEmulate("the local cloud cannot emulate: " + ", ".join(unknown))

    def _parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "AWS::Region": self.stack.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.stack.region}:{ACCOUNT_ID}:stack/{self.stack.name}/local",
            "AWS::NotificationARNs": [],
        }
        for name, spec in (self.t.template.get("Parameters") or {}).items():
            if name in given:
                value = given[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise CannotEmulate(f"parameter {name} has no default; give it a value")
            # CloudFormation refuses a value outside its parameter's constraints before it creates anything.
            aws_rules.template_parameter(name, spec, value)
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            params[name] = value
        return params

    def _check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before it creates anything.

        A rule whose ``RuleCondition`` holds (or that has none) must see each ``Assert`` hold; else the
        stack is refused with its ``AssertDescription``
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html).
        """
        for name, rule in (self.t.template.get("Rules") or {}).items():
            if "RuleCondition" in rule and not self.resolver.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions") or []:
                if not self.resolver.resolve(assertion["Assert"]):
                    raise AwsRefused(f"Rules.{name}", "a rule's assertion fails",
                                     str(assertion.get("AssertDescription", "")), doc=RULES)  # fmt: skip

    def props(self, logical_id: str) -> dict[str, Any]:
        """The resource's properties as written (intrinsics unresolved)."""
        return self.resources[logical_id].get("Properties", {})

    def name(self, logical_id: str, prop: str | None, limit: int = 64, lower: bool = False) -> str:
        """The resource's name: its ``prop`` if the template gives one, else CloudFormation's ``stack-id-HASH``."""
        explicit = self.props(logical_id).get(prop) if prop else None
        if explicit is not None:
            return self.resolver.resolve(explicit)
        name = f"{self.stack.name}-{logical_id}"[: limit - 11] + "-" + short_id(self.stack.name, logical_id).upper()
        return name.lower() if lower else name

    def ref(self, logical_id: str) -> Any:
        if logical_id not in self.resources:
            raise Unsupported(f"Ref to unknown {logical_id}")
        kind = self.catalogue.types[self.resources[logical_id]["Type"]]
        if kind.ref is not None:
            return kind.ref(self, logical_id)
        return kind.id_prefix + short_id(self.stack.name, logical_id)

    def arn_prefix(self) -> str:
        """``{region}:{account}``, the middle of a regional ARN."""
        return f"{self.stack.region}:{ACCOUNT_ID}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise Unsupported(f"GetAtt of unknown {logical_id}")
        kind = self.catalogue.types[self.resources[logical_id]["Type"]]
        if attribute not in kind.attributes:
            raise Unsupported(f"the local cloud does not know {logical_id}.{attribute} ({kind.name})")
        return kind.attributes[attribute](self, logical_id, self.ref(logical_id))

    # --- creation -----------------------------------------------------------------------------

    def build(self) -> Stack:
        self._check_rules()
        by_type: dict[str, list[str]] = {}
        for logical_id, resource in self.resources.items():
            if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                continue
            by_type.setdefault(resource["Type"], []).append(logical_id)
            self.stack.physical[logical_id] = str(self.ref(logical_id))
        for step in self.catalogue.steps:
            step.run(self, by_type)
        self.stack.outputs = {
            name: self.resolver.resolve(spec["Value"])
            for name, spec in (self.t.template.get("Outputs") or {}).items()
            if "Condition" not in spec or self.resolver.condition(spec["Condition"])
        }
        return self.stack
