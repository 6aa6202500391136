"""Creating the stack of ``infra/template.yaml`` in the local cloud.

Each resource type is either created in moto through its AWS API (tables, buckets, state
machines, roles, log groups, the token secret), or served by the local cloud itself (Lambda
functions and layers, both API Gateways, EFS as a directory, the VPC's security groups). A type
that is neither is refused with an error naming it: nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longrun.local import asl_validator, aws_rules
from longrun.local.intrinsics import Resolver, Unsupported
from longrun.local.lambda_runtime import FunctionSpec
from longrun.local.template import Translated

ACCOUNT_ID = "123456789012"

CREATED_IN_MOTO = {
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::StepFunctions::StateMachine",
    "AWS::IAM::Role",
    "AWS::IAM::ManagedPolicy",
    "AWS::Logs::LogGroup",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::Rule",  # moto delivers S3's EventBridge events to the rule's SQS target
    "AWS::Events::EventBus",
    # Monitoring: created so that operators find them as on AWS (describe-alarms, the dashboard,
    # the topic). Nothing evaluates an alarm locally: moto's CloudWatch gets no metrics (the
    # functions' EMF lines land in their log files) and the engine logs nothing to CloudWatch Logs.
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
}
SERVED_LOCALLY = {
    "AWS::Lambda::EventSourceMapping",  # polled by event_sources (SQS → function)
    "AWS::Lambda::Function",  # warm worker processes (lambda_runtime)
    "AWS::Lambda::LayerVersion",  # its directory, in place of /opt
    "AWS::Lambda::Permission",  # the local API fronts may invoke any function of the stack
    "AWS::ApiGateway::RestApi",  # rest_front
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    # Applies to requests made with the API keys attached to it; the stack attaches none and the
    # local REST front takes none, so it changes nothing here (the stage's throttle is applied).
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGatewayV2::Api",  # websocket_front
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Stage",
    "AWS::EFS::FileSystem",  # a directory under --data-dir
    "AWS::EFS::MountTarget",
    "AWS::EFS::AccessPoint",
    "AWS::EC2::SecurityGroup",  # loopback has no security groups
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    # The network the stack makes (docs/network.md): the local cloud's functions reach everything
    # directly, so there is nothing to route; each gets an id of its kind and nothing else.
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
    "AWS::ECS::Cluster",  # the workers of its services run as local processes
    "AWS::ECS::TaskDefinition",  # read for its container's command, environment and EFS volumes
    "AWS::ECS::Service",  # `longrun local up --build-workers N` processes (ServiceSpec)
    # Scaling on the queue's depth is AWS's; the local pool keeps its fixed size (said at start).
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
}
# Warm processes a function may have at once: what two shared cores hold. A function's reserved
# concurrency below it is honored (Lambda throttles the function there); above it, this is the cap.
LOCAL_POOL_SIZE = 8


def _pool_size(reserved: Any) -> int:
    return LOCAL_POOL_SIZE if reserved is None else min(LOCAL_POOL_SIZE, int(reserved))


# Where the worker image (infra/worker/Dockerfile) puts this repository's code.
IMAGE_ROOT = "/app"
# Rule targets the local cloud delivers: moto itself delivers to SQS; Lambda functions and state
# machines go through longrun.local.event_targets (moto fails PutEvents on them).
_RULE_TARGET_SERVICES = ("sqs", "lambda", "states")
_RULE_TARGET_FIELDS = {"Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"}
_FUNCTION_URI = re.compile(r"functions/(arn:[^/]+)/invocations")
# An API Gateway AWS service integration with S3 by path: arn:aws:apigateway:{region}:s3:path/{bucket}/{key}
_S3_PATH_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]*:s3:path/([^/{}]+)/(.+)$")


class CannotEmulate(Exception):
    """The template names something the local cloud does not emulate."""


@dataclass
class S3Integration:
    """A route that API Gateway answers from S3 with a role (``type: aws``, ``s3:path/…``): static files."""

    bucket: str
    key: str  # the object key, with {placeholders} filled from the request: "static/{proxy}"
    role_arn: str
    path_parameters: dict[str, str]  # placeholder → the method's path parameter
    responses: dict[str, dict[str, Any]]  # selection pattern (on S3's status) → integration response


@dataclass
class RestRoute:
    method: str
    path: str  # "/jobs/{jobId}"
    function: str  # function name ("" for an S3 route)
    authorizer: str | None
    s3: S3Integration | None = None
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
        self.pattern = re.compile(f"^{regex}$")


@dataclass
class RestAuthorizer:
    function: str
    header: str
    ttl: int


@dataclass
class RestApiSpec:
    api_id: str
    stage: str
    routes: list[RestRoute]
    authorizers: dict[str, RestAuthorizer]
    gateway_responses: dict[str, dict[str, Any]]
    throttle_rate: float | None = None
    throttle_burst: int | None = None


@dataclass
class WebSocketApiSpec:
    api_id: str
    stage: str
    route_selection: str
    routes: dict[str, str]  # route key → function name
    connect_authorizer: str | None  # function name
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    endpoint: str = ""  # its ApiEndpoint attribute as the template reads it (the local @connections URL)


@dataclass
class EventSourceSpec:
    """An SQS → Lambda event source mapping: what the local poller needs to act like Lambda's."""

    queue_url: str
    function: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False


@dataclass
class ServiceSpec:
    """An ECS service's container, as the local cloud runs it: a process per task."""

    logical_id: str
    name: str
    command: list[str]
    environment: dict[str, str]
    scales: bool = False  # the template scales it (AWS only: the local pool is fixed)


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


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape in the S3 API's."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _mounted(value: str, mounts: dict[str, Path]) -> str:
    """An environment value under a mount point (``/mnt/efs/...``, ``/opt``), pointed at the local directory."""
    for mount_point, directory in mounts.items():
        if value == mount_point or value.startswith(mount_point + "/"):
            return str(directory) + value[len(mount_point) :]
    return value


def _definition(props: dict[str, Any]) -> str:
    """A state machine's definition as Step Functions receives it: its DefinitionSubstitutions applied."""
    definition = props.get("DefinitionString")
    if definition is None:
        definition = json.dumps(props["Definition"])
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    return definition


def _short_id(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


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
        self.resources: dict[str, dict[str, Any]] = translated.template.get("Resources", {})
        self.stack = Stack(name=stack_name, region=region)
        self.data_dir = data_dir
        self.ws_management_base = websocket_management_base
        self.aws = aws  # a callable: service name → boto3 client against moto
        self.account_concurrency = account_concurrency  # the Lambda quota reservations are judged against
        self._redrives: list[tuple[str, str]] = []  # (queue URL, RedrivePolicy) not applied yet
        self._check_types()
        self.params = self._parameters(parameters)
        self.resolver = Resolver(
            parameters=self.params,
            conditions=translated.template.get("Conditions", {}),
            ref=self._ref,
            get_att=self._get_att,
        )

    # --- names --------------------------------------------------------------------------------

    def _check_types(self) -> None:
        unknown = sorted(
            f"{logical_id} ({r['Type']})"
            for logical_id, r in self.resources.items()
            if r["Type"] not in CREATED_IN_MOTO | SERVED_LOCALLY
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
            if str(spec.get("Type", "")).startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                value = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            params[name] = value
        return params

    def _props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def _name(self, logical_id: str, prop: str | None, limit: int = 64, lower: bool = False) -> str:
        explicit = self._props(logical_id).get(prop) if prop else None
        if explicit is not None:
            return self.resolver.resolve(explicit)
        name = f"{self.stack.name}-{logical_id}"[: limit - 11] + "-" + _short_id(self.stack.name, logical_id).upper()
        return name.lower() if lower else name

    def _ref(self, logical_id: str) -> Any:
        if logical_id not in self.resources:
            raise Unsupported(f"Ref to unknown {logical_id}")
        kind = self.resources[logical_id]["Type"]
        arn = self._arn_prefix()
        if kind == "AWS::DynamoDB::Table":
            return self._name(logical_id, "TableName", 255)
        if kind == "AWS::S3::Bucket":
            return self._name(logical_id, "BucketName", 63, lower=True)
        if kind == "AWS::Lambda::Function":
            return self._name(logical_id, "FunctionName")
        if kind == "AWS::StepFunctions::StateMachine":
            return f"arn:aws:states:{arn}:stateMachine:{self._name(logical_id, 'StateMachineName', 80)}"
        if kind == "AWS::IAM::Role":
            return self._name(logical_id, "RoleName")
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:aws:iam::{ACCOUNT_ID}:policy/{self._name(logical_id, 'ManagedPolicyName', 128)}"
        if kind == "AWS::Logs::LogGroup":
            return self._name(logical_id, "LogGroupName", 512)
        if kind == "AWS::SQS::Queue":
            return f"{self.sqs_base}/{ACCOUNT_ID}/{self._name(logical_id, 'QueueName', 80)}"
        if kind == "AWS::Events::Rule":
            return self._name(logical_id, "Name", 64)
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{arn}:{self._name(logical_id, 'TopicName', 256)}"
        if kind == "AWS::CloudWatch::Alarm":
            return self._name(logical_id, "AlarmName", 255)
        if kind == "AWS::CloudWatch::Dashboard":
            return self._name(logical_id, "DashboardName", 255)
        if kind == "AWS::Events::EventBus":
            return self._name(logical_id, "Name", 256)
        if kind == "AWS::Lambda::LayerVersion":
            return f"arn:aws:lambda:{arn}:layer:{self._name(logical_id, 'LayerName')}:1"
        if kind in ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"):
            return self.resolver.resolve(self._props(logical_id)["StageName"])
        if kind == "AWS::ECS::Cluster":
            return self._name(logical_id, "ClusterName", 255)
        if kind == "AWS::ECS::Service":
            return f"arn:aws:ecs:{arn}:service/{self._name(logical_id, 'ServiceName', 255)}"
        if kind == "AWS::ECS::TaskDefinition":
            return f"arn:aws:ecs:{arn}:task-definition/{self._name(logical_id, 'Family', 255)}:1"
        prefixes = {
            "AWS::EFS::FileSystem": "fs-",
            "AWS::EFS::AccessPoint": "fsap-",
            "AWS::EFS::MountTarget": "fsmt-",
            "AWS::EC2::SecurityGroup": "sg-",
            "AWS::EC2::SecurityGroupEgress": "sgr-",
            "AWS::EC2::VPC": "vpc-",
            "AWS::EC2::Subnet": "subnet-",
            "AWS::EC2::InternetGateway": "igw-",
            "AWS::EC2::NatGateway": "nat-",
            "AWS::EC2::RouteTable": "rtb-",
            "AWS::EC2::SubnetRouteTableAssociation": "rtbassoc-",
            "AWS::EC2::VPCEndpoint": "vpce-",
        }
        return prefixes.get(kind, "") + _short_id(self.stack.name, logical_id)

    @property
    def sqs_base(self) -> str:
        """Queue URLs are ``{endpoint}/{account}/{name}`` on moto, as on AWS's legacy endpoints."""
        return str(self.aws("sqs").meta.endpoint_url).rstrip("/")

    def _arn_prefix(self) -> str:
        return f"{self.stack.region}:{ACCOUNT_ID}"

    def _role_path(self, logical_id: str) -> str:
        """A role's ARN carries its path (``/`` unless it has one): ``arn:aws:iam::<account>:role/<path>/<name>``."""
        return str(self.resolver.resolve(self._props(logical_id).get("Path", "/")))

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise Unsupported(f"GetAtt of unknown {logical_id}")
        kind = self.resources[logical_id]["Type"]
        ref = self._ref(logical_id)
        where = self._arn_prefix()
        table = {
            ("AWS::Lambda::Function", "Arn"): f"arn:aws:lambda:{where}:function:{ref}",
            ("AWS::DynamoDB::Table", "Arn"): f"arn:aws:dynamodb:{where}:table/{ref}",
            ("AWS::S3::Bucket", "Arn"): f"arn:aws:s3:::{ref}",
            ("AWS::S3::Bucket", "DomainName"): f"{ref}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{ref}.s3.{self.stack.region}.amazonaws.com",
            ("AWS::IAM::Role", "Arn"): f"arn:aws:iam::{ACCOUNT_ID}:role{self._role_path(logical_id)}{ref}",
            ("AWS::StepFunctions::StateMachine", "Arn"): ref,
            ("AWS::StepFunctions::StateMachine", "Name"): str(ref).rsplit(":", 1)[-1],
            ("AWS::Logs::LogGroup", "Arn"): f"arn:aws:logs:{where}:log-group:{ref}:*",
            ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{where}:{str(ref).rsplit('/', 1)[-1]}",
            ("AWS::SQS::Queue", "QueueName"): str(ref).rsplit("/", 1)[-1],
            ("AWS::SQS::Queue", "QueueUrl"): ref,
            ("AWS::Events::Rule", "Arn"): f"arn:aws:events:{where}:rule/{ref}",
            ("AWS::Events::EventBus", "Arn"): f"arn:aws:events:{where}:event-bus/{ref}",
            ("AWS::Events::EventBus", "Name"): ref,
            ("AWS::SNS::Topic", "TopicArn"): ref,
            ("AWS::SNS::Topic", "TopicName"): str(ref).rsplit(":", 1)[-1],
            ("AWS::CloudWatch::Alarm", "Arn"): f"arn:aws:cloudwatch:{where}:alarm:{ref}",
            ("AWS::EFS::FileSystem", "Arn"): f"arn:aws:elasticfilesystem:{where}:file-system/{ref}",
            ("AWS::EFS::AccessPoint", "Arn"): f"arn:aws:elasticfilesystem:{where}:access-point/{ref}",
            ("AWS::EC2::SecurityGroup", "GroupId"): ref,
            ("AWS::EC2::EIP", "AllocationId"): f"eipalloc-{ref}",
            ("AWS::ECS::Service", "Name"): str(ref).rsplit("/", 1)[-1],
            ("AWS::ECS::Cluster", "Arn"): f"arn:aws:ecs:{where}:cluster/{ref}",
            ("AWS::ApiGateway::RestApi", "RootResourceId"): _short_id(str(ref), "root"),
            # The local @connections API; on AWS this is wss://{api}.execute-api.{region}.amazonaws.com
            ("AWS::ApiGatewayV2::Api", "ApiEndpoint"): f"{self.ws_management_base}/{ref}",
            ("AWS::ApiGatewayV2::Api", "ApiId"): ref,
        }
        if (kind, attribute) not in table:
            raise Unsupported(f"the local cloud does not know {logical_id}.{attribute} ({kind})")
        return table[(kind, attribute)]

    # --- creation -----------------------------------------------------------------------------

    def build(self) -> Stack:
        by_type: dict[str, list[str]] = {}
        for logical_id, resource in self.resources.items():
            if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                continue
            by_type.setdefault(resource["Type"], []).append(logical_id)
            self.stack.physical[logical_id] = str(self._ref(logical_id))
        for logical_id in by_type.get("AWS::StepFunctions::StateMachine", []):
            self._judge_state_machine(logical_id)
        for kind in (
            "AWS::IAM::ManagedPolicy",
            "AWS::IAM::Role",
            "AWS::Logs::LogGroup",
            "AWS::DynamoDB::Table",
            "AWS::SQS::Queue",
            "AWS::SQS::QueuePolicy",
            "AWS::S3::Bucket",
            "AWS::S3::BucketPolicy",
            "AWS::Events::EventBus",
            "AWS::Events::Rule",
            "AWS::StepFunctions::StateMachine",
            "AWS::SNS::Topic",
            "AWS::SNS::Subscription",
            "AWS::CloudWatch::Alarm",
            "AWS::CloudWatch::Dashboard",
        ):
            for logical_id in by_type.get(kind, []):
                getattr(self, "_create_" + kind.split("::", 1)[1].replace("::", "_").lower())(
                    logical_id, self.resolver.resolve(self._props(logical_id))
                )
        self._efs(by_type)
        for logical_id in by_type.get("AWS::Lambda::Function", []):
            self.stack.functions.append(self._function(logical_id))
        self._judge_reservations(by_type.get("AWS::Lambda::Function", []))
        if self._redrives:
            raise CannotEmulate(f"dead-letter queues that do not exist: {self._redrives}")
        for logical_id in by_type.get("AWS::Lambda::EventSourceMapping", []):
            self.stack.event_sources.append(self._event_source(logical_id))
        scaled = {
            str(self.resolver.resolve(self._props(t)).get("ResourceId", "")).rsplit("/", 1)[-1]
            for t in by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [])
        }
        for logical_id in by_type.get("AWS::ECS::Service", []):
            service = self._service(logical_id)
            service.scales = service.name in scaled
            self.stack.services.append(service)
        for logical_id in by_type.get("AWS::ApiGateway::RestApi", []):
            self.stack.rest_api = self._rest_api(logical_id, by_type)
        for logical_id in by_type.get("AWS::ApiGatewayV2::Api", []):
            self.stack.websocket_api = self._websocket_api(logical_id, by_type)
        self.stack.outputs = {
            name: self.resolver.resolve(spec["Value"])
            for name, spec in (self.t.template.get("Outputs") or {}).items()
            if "Condition" not in spec or self.resolver.condition(spec["Condition"])
        }
        return self.stack

    def _create_iam_managedpolicy(self, logical_id: str, props: dict[str, Any]) -> None:
        name = self.stack.physical[logical_id].rsplit("/", 1)[-1]
        self.aws("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(props["PolicyDocument"]))

    def _create_iam_role(self, logical_id: str, props: dict[str, Any]) -> None:
        iam = self.aws("iam")
        name = self.stack.physical[logical_id]
        iam.create_role(
            RoleName=name,
            Path=props.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
        )
        for policy in props.get("Policies", []):
            # IAM reads a document without Version as 2008-10-17 (SAM writes inline policies so);
            # moto refuses those, so the local copy states the current version.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
        for arn in props.get("ManagedPolicyArns", []):
            if ":aws:policy/" in arn:
                continue  # AWS managed policies are not in moto's account; nothing local enforces IAM
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)

    def _create_logs_loggroup(self, logical_id: str, props: dict[str, Any]) -> None:
        logs = self.aws("logs")
        name = self.stack.physical[logical_id]
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))

    def _create_dynamodb_table(self, logical_id: str, props: dict[str, Any]) -> None:
        ddb = self.aws("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": self.stack.physical[logical_id],
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        ddb.create_table(**kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(
                TableName=kwargs["TableName"],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )

    def _create_s3_bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        s3 = self.aws("s3")
        name = self.stack.physical[logical_id]
        if self.stack.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.stack.region})
        if "BucketEncryption" in props:
            rules = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("VersioningConfiguration", {}).get("Status"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        notifications = props.get("NotificationConfiguration") or {}
        if set(notifications) - {"EventBridgeConfiguration"}:
            raise CannotEmulate(f"{logical_id}: only EventBridge notifications are emulated")
        if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if "CorsConfiguration" in props:
            # CloudFormation's CorsRule names differ from the S3 API's in three fields.
            renamed = {"Id": "ID", "MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}
            rules = [
                {renamed.get(k, k): v for k, v in rule.items()} for rule in props["CorsConfiguration"]["CorsRules"]
            ]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        if "LifecycleConfiguration" in props:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
                },
            )

    def _create_sqs_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        sqs = self.aws("sqs")
        attributes = {
            k: str(props[k])
            for k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")
            if k in props
        }
        url = sqs.create_queue(QueueName=self.stack.physical[logical_id].rsplit("/", 1)[-1], Attributes=attributes)
        self.stack.physical[logical_id] = url["QueueUrl"]
        if "RedrivePolicy" in props:
            self._redrives.append((url["QueueUrl"], json.dumps(props["RedrivePolicy"])))
        self._apply_redrives()

    def _apply_redrives(self) -> None:
        """Redrive policies whose dead-letter queue exists by now (queues are made in template order)."""
        sqs = self.aws("sqs")
        waiting = []
        for url, policy in self._redrives:
            dead_letter = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
            if dead_letter not in {u.rsplit("/", 1)[-1] for u in sqs.list_queues().get("QueueUrls", [])}:
                waiting.append((url, policy))
                continue
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
        self._redrives = waiting

    def _create_sqs_queuepolicy(self, logical_id: str, props: dict[str, Any]) -> None:
        for url in props["Queues"]:
            self.aws("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )

    def _create_sns_topic(self, logical_id: str, props: dict[str, Any]) -> None:
        attributes = {"DisplayName": str(props["DisplayName"])} if "DisplayName" in props else {}
        self.aws("sns").create_topic(Name=self.stack.physical[logical_id].rsplit(":", 1)[-1], Attributes=attributes)

    def _create_sns_subscription(self, logical_id: str, props: dict[str, Any]) -> None:
        # moto records it (an email subscription stays pending, as it would until confirmed); it sends nothing.
        self.aws("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])

    def _create_cloudwatch_alarm(self, logical_id: str, props: dict[str, Any]) -> None:
        """The alarm as PutMetricAlarm takes it: CloudFormation's property names are the API's."""
        kwargs: dict[str, Any] = {
            k: props[k]
            for k in (
                "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
                "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Unit",
                "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile",
                "ThresholdMetricId", "Metrics",
            )
            if k in props
        }  # fmt: skip
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in props:
                kwargs[key] = int(props[key])
        if "Threshold" in props:
            kwargs["Threshold"] = float(props["Threshold"])
        self.aws("cloudwatch").put_metric_alarm(AlarmName=self.stack.physical[logical_id], **kwargs)

    def _create_cloudwatch_dashboard(self, logical_id: str, props: dict[str, Any]) -> None:
        body = props["DashboardBody"]
        json.loads(body)  # a body that is not JSON is a template bug: CloudFormation refuses it too
        self.aws("cloudwatch").put_dashboard(DashboardName=self.stack.physical[logical_id], DashboardBody=body)

    def _create_events_eventbus(self, logical_id: str, props: dict[str, Any]) -> None:
        self.aws("events").create_event_bus(Name=self.stack.physical[logical_id])

    def _create_events_rule(self, logical_id: str, props: dict[str, Any]) -> None:
        events = self.aws("events")
        name = self.stack.physical[logical_id]
        kwargs: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kwargs["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        if "EventBusName" in props:
            kwargs["EventBusName"] = props["EventBusName"]
        events.put_rule(**kwargs)
        targets = props.get("Targets", [])
        for target in targets:
            if not any(f":{service}:" in target["Arn"] for service in _RULE_TARGET_SERVICES):
                raise CannotEmulate(
                    f"{logical_id}: rules deliver to SQS, Lambda and Step Functions targets here, not {target['Arn']}"
                )
        if targets:
            events.put_targets(
                Rule=name,
                **({"EventBusName": props["EventBusName"]} if "EventBusName" in props else {}),
                Targets=[{k: v for k, v in t.items() if k in _RULE_TARGET_FIELDS} for t in targets],
            )

    def _event_source(self, logical_id: str) -> EventSourceSpec:
        props = self.resolver.resolve(self._props(logical_id))
        arn = str(props["EventSourceArn"])
        if ":sqs:" not in arn:
            raise CannotEmulate(f"{logical_id}: only SQS event sources are emulated, not {arn}")
        queue_url = self.aws("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        self._judge_event_source(logical_id, props, queue_url)
        return EventSourceSpec(
            queue_url=queue_url,
            function=str(props["FunctionName"]).rsplit(":", 1)[-1],
            batch_size=int(props.get("BatchSize", 10)),
            batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        )

    def _judge_event_source(self, logical_id: str, props: dict[str, Any], queue_url: str) -> None:
        """CreateEventSourceMapping's checks (aws_rules), with the queue's attributes and the function's timeout."""
        attributes = self.aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        function = str(props["FunctionName"]).rsplit(":", 1)[-1]
        spec = next((f for f in self.stack.functions if f.name == function), None)
        if spec is None:
            raise CannotEmulate(f"{logical_id}: function {function} is not in the stack")
        aws_rules.sqs_event_source_mapping(
            logical_id,
            props,
            fifo=attributes.get("FifoQueue") == "true",
            visibility_timeout=int(attributes.get("VisibilityTimeout", aws_rules.SQS_DEFAULT_VISIBILITY_TIMEOUT)),
            function_timeout=int(spec.timeout),
        )

    def _judge_reservations(self, functions: list[str]) -> None:
        """The functions' reserved concurrency against the account's (``--account-concurrency``)."""
        reservations = {}
        for logical_id in functions:
            reserved = self.resolver.resolve(self._props(logical_id)).get("ReservedConcurrentExecutions")
            if reserved is not None:
                reservations[logical_id] = int(reserved)
        aws_rules.reserved_concurrency(reservations, self.account_concurrency)

    def _judge_state_machine(self, logical_id: str) -> None:
        """CreateStateMachine's limits (aws_rules) on the definition as Step Functions receives it."""
        definition = _definition(self.resolver.resolve(self._props(logical_id)))
        aws_rules.state_machine(logical_id, self.stack.physical[logical_id].rsplit(":", 1)[-1], definition)

    def _create_s3_bucketpolicy(self, logical_id: str, props: dict[str, Any]) -> None:
        document = dict(props["PolicyDocument"])
        # The local AWS endpoint speaks plain HTTP on loopback, and moto evaluates bucket policies:
        # a TLS-only statement would refuse every local request, so it is the one part not applied.
        document["Statement"] = [s for s in document.get("Statement", []) if "aws:SecureTransport" not in json.dumps(s)]
        if document["Statement"]:
            self.aws("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))

    def _create_stepfunctions_statemachine(self, logical_id: str, props: dict[str, Any]) -> None:
        definition = _definition(props)
        json.loads(definition)  # a bad substitution is a template bug: fail here, not at run time
        arn = self.stack.physical[logical_id]
        kwargs: dict[str, Any] = {
            "name": arn.rsplit(":", 1)[-1],
            "definition": definition,
            "roleArn": props["RoleArn"],
            "type": props.get("StateMachineType", "STANDARD"),
        }
        if props.get("LoggingConfiguration"):
            kwargs["loggingConfiguration"] = {
                "level": props["LoggingConfiguration"].get("Level", "OFF"),
                "includeExecutionData": bool(props["LoggingConfiguration"].get("IncludeExecutionData")),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in props["LoggingConfiguration"].get("Destinations", [])
                ],
            }
        if props.get("TracingConfiguration"):
            kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
        try:
            created = self.aws("stepfunctions").create_state_machine(**kwargs)
        except Exception as e:  # InvalidDefinition, judged as on AWS (moto_fixes): the stack would roll back
            refused = asl_validator.as_aws_refused(logical_id, e)
            if refused is None:
                raise
            raise refused from None
        self.stack.state_machines[logical_id] = created["stateMachineArn"]

    def _efs(self, by_type: dict[str, list[str]]) -> None:
        """EFS is a directory: ``<data-dir>/efs/<file system id>``; an access point adds its root."""
        self._mounts: dict[str, Path] = {}
        for logical_id in by_type.get("AWS::EFS::AccessPoint", []):
            props = self.resolver.resolve(self._props(logical_id))
            root = self.data_dir / "efs" / str(props["FileSystemId"])
            path = root / str(props.get("RootDirectory", {}).get("Path", "/")).lstrip("/")
            path.mkdir(parents=True, exist_ok=True)
            self._mounts[self._get_att(logical_id, "Arn")] = path
            self.stack.efs_root = path

    def _function(self, logical_id: str) -> FunctionSpec:
        props = self.resolver.resolve(self._props(logical_id))
        if logical_id not in self.t.code_dirs:
            raise CannotEmulate(f"{logical_id}: the local cloud runs functions from a local CodeUri only")
        # Lambda mounts layers at /opt and EFS at LocalMountPath; a local process cannot, so values
        # of the environment that point under those mount points are pointed at the directories.
        mounts: dict[str, Path] = {}
        for layer_arn in props.get("Layers", []):
            layer_id = next((lid for lid, phys in self.stack.physical.items() if phys == layer_arn), None)
            source = next(
                (d for sam_id, d in self.t.layer_dirs.items() if layer_id and layer_id.startswith(sam_id)), None
            )
            if source is None:
                raise CannotEmulate(f"{logical_id}: layer {layer_arn} has no local ContentUri")
            mounts["/opt"] = source
        for fs in props.get("FileSystemConfigs", []):
            if fs["Arn"] not in self._mounts:
                raise CannotEmulate(f"{logical_id}: file system {fs['Arn']} is not an access point of the stack")
            mounts[fs["LocalMountPath"]] = self._mounts[fs["Arn"]]
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {key: _mounted(str(value), mounts) for key, value in variables.items()}
        name = self.stack.physical[logical_id]
        aws_rules.lambda_function(logical_id, props, name)
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=self._get_att(logical_id, "Arn"),
            handler=props["Handler"],
            code_dir=self.t.code_dirs[logical_id],
            timeout=float(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            environment=environment,
            concurrency=_pool_size(props.get("ReservedConcurrentExecutions")),
        )

    def _service(self, logical_id: str) -> ServiceSpec:
        """The service's task definition: one container, its EFS volumes and the image's /app mapped here."""
        props = self.resolver.resolve(self._props(logical_id))
        task_id = next((lid for lid, phys in self.stack.physical.items() if phys == str(props["TaskDefinition"])), None)
        if task_id is None:
            raise CannotEmulate(f"{logical_id}: its task definition is not in the template")
        task = self.resolver.resolve(self._props(task_id))
        containers = task.get("ContainerDefinitions") or []
        if len(containers) != 1:
            raise CannotEmulate(f"{task_id}: the local cloud runs task definitions of one container")
        container = containers[0]
        volumes: dict[str, Path] = {}
        for volume in task.get("Volumes") or []:
            efs = volume.get("EFSVolumeConfiguration")
            if efs is None:
                raise CannotEmulate(f"{task_id}: volume {volume.get('Name')} is not an EFS volume")
            access_point = str((efs.get("AuthorizationConfig") or {}).get("AccessPointId", ""))
            directory = next((d for arn, d in self._mounts.items() if arn.endswith("/" + access_point)), None)
            if directory is None:
                raise CannotEmulate(f"{task_id}: volume {volume['Name']} is not an access point of the stack")
            volumes[volume["Name"]] = directory
        mounts = {m["ContainerPath"]: volumes[m["SourceVolume"]] for m in container.get("MountPoints") or []}
        mounts[IMAGE_ROOT] = self.t.base_dir.parent  # the repository: infra/ is the template's directory
        pairs = container.get("Environment") or []
        environment = {pair["Name"]: _mounted(str(pair["Value"]), mounts) for pair in pairs}
        return ServiceSpec(
            logical_id=logical_id,
            name=str(self.stack.physical[logical_id]).rsplit("/", 1)[-1],
            command=[str(part) for part in container.get("Command") or []],
            environment=environment,
        )

    def _function_of(self, uri: str) -> str:
        match = _FUNCTION_URI.search(uri)
        if not match:
            raise CannotEmulate(f"integration {uri} is not a Lambda proxy integration")
        return match.group(1).rsplit(":", 1)[-1]

    def _rest_api(self, logical_id: str, by_type: dict[str, list[str]]) -> RestApiSpec:
        props = self.resolver.resolve(self._props(logical_id))
        body = props.get("Body") or {}
        authorizers = {}
        for name, definition in (body.get("securityDefinitions") or {}).items():
            auth = definition.get("x-amazon-apigateway-authorizer")
            if not auth:
                continue
            if auth.get("type") != "token":
                raise CannotEmulate(f"{logical_id}: only TOKEN authorizers are emulated, not {auth.get('type')}")
            authorizers[name] = RestAuthorizer(
                function=self._function_of(auth["authorizerUri"]),
                header=definition.get("name", "Authorization"),
                ttl=int(auth.get("authorizerResultTtlInSeconds", 300)),
            )
        routes = []
        for path, methods in (body.get("paths") or {}).items():
            for method, operation in methods.items():
                where = f"{logical_id} {method.upper()} {path}"
                integration = operation.get("x-amazon-apigateway-integration") or {}
                aws_rules.rest_integration_timeout(logical_id, f"{method.upper()} {path}",
                                                   integration.get("timeoutInMillis"))  # fmt: skip
                # SAM's marker for "no authorizer on this method" (an event's Auth: {Authorizer: NONE}).
                security = [next(iter(s)) for s in operation.get("security", []) if s and next(iter(s)) != "NONE"]
                if any(name not in authorizers for name in security):
                    raise CannotEmulate(f"{where}: security {security} names no authorizer of the API")
                if integration.get("type") == "aws" and _S3_PATH_URI.match(str(integration.get("uri"))):
                    routes.append(
                        RestRoute(
                            method=method.upper(),
                            path=path,
                            function="",
                            authorizer=security[0] if security else None,
                            s3=self._s3_integration(where, integration),
                        )
                    )
                    continue
                if integration.get("type") != "aws_proxy":
                    raise CannotEmulate(f"{where}: only Lambda proxy integrations and S3 GETs by path")
                routes.append(
                    RestRoute(
                        method=method.upper(),
                        path=path,
                        function=self._function_of(integration["uri"]),
                        authorizer=security[0] if security else None,
                    )
                )
        stage_id = next(
            (
                s
                for s in by_type.get("AWS::ApiGateway::Stage", [])
                if self._props(s).get("RestApiId") == {"Ref": logical_id}
            ),
            None,
        )
        stage_props = self.resolver.resolve(self._props(stage_id)) if stage_id else {}
        throttle = next(iter(stage_props.get("MethodSettings", [])), {})
        return RestApiSpec(
            api_id=self.stack.physical[logical_id],
            stage=stage_props.get("StageName", "prod"),
            routes=routes,
            authorizers=authorizers,
            gateway_responses=body.get("x-amazon-apigateway-gateway-responses") or {},
            throttle_rate=throttle.get("ThrottlingRateLimit"),
            throttle_burst=throttle.get("ThrottlingBurstLimit"),
        )

    @staticmethod
    def _s3_integration(where: str, integration: dict[str, Any]) -> S3Integration:
        """An S3 GET by path with a role: what the local REST front can answer from moto's S3."""
        match = _S3_PATH_URI.match(str(integration["uri"]))
        assert match is not None
        if str(integration.get("httpMethod", "")).upper() != "GET":
            raise CannotEmulate(f"{where}: only GET is emulated for S3 integrations")
        if not integration.get("credentials"):
            raise CannotEmulate(f"{where}: an S3 integration needs a role (credentials)")
        path_parameters = {}
        for target, source in (integration.get("requestParameters") or {}).items():
            if not (target.startswith("integration.request.path.") and source.startswith("method.request.path.")):
                raise CannotEmulate(f"{where}: only path parameters are mapped to S3, not {target}")
            path_parameters[target.rsplit(".", 1)[1]] = source.rsplit(".", 1)[1]
        responses = integration.get("responses") or {}
        for response in responses.values():
            for source in (response.get("responseParameters") or {}).values():
                if not (source.startswith("'") or source.startswith("integration.response.header.")):
                    raise CannotEmulate(f"{where}: response parameter {source} (static values and headers only)")
        return S3Integration(
            bucket=match.group(1),
            key=match.group(2),
            role_arn=str(integration["credentials"]),
            path_parameters=path_parameters,
            responses=responses,
        )

    def _websocket_api(self, logical_id: str, by_type: dict[str, list[str]]) -> WebSocketApiSpec:
        props = self.resolver.resolve(self._props(logical_id))
        if props.get("ProtocolType") != "WEBSOCKET":
            raise CannotEmulate(f"{logical_id}: only WEBSOCKET APIs are emulated")

        def of_api(kind: str) -> list[tuple[str, dict[str, Any]]]:
            return [
                (lid, self.resolver.resolve(self._props(lid)))
                for lid in by_type.get(kind, [])
                if self._props(lid).get("ApiId") == {"Ref": logical_id}
            ]

        integration_props = of_api("AWS::ApiGatewayV2::Integration")
        for lid, integration in integration_props:
            aws_rules.websocket_integration_timeout(lid, integration.get("TimeoutInMillis"))
        integrations = {self.stack.physical[lid]: p for lid, p in integration_props}
        authorizers = {self.stack.physical[lid]: p for lid, p in of_api("AWS::ApiGatewayV2::Authorizer")}
        routes: dict[str, str] = {}
        connect_authorizer = None
        for _, route in of_api("AWS::ApiGatewayV2::Route"):
            integration = integrations[route["Target"].split("/", 1)[1]]
            if integration.get("IntegrationType") != "AWS_PROXY":
                raise CannotEmulate(f"{logical_id} {route['RouteKey']}: only AWS_PROXY integrations")
            routes[route["RouteKey"]] = self._function_of(integration["IntegrationUri"])
            if route.get("AuthorizationType") == "CUSTOM":
                if route["RouteKey"] != "$connect":
                    raise CannotEmulate("API Gateway authorizes WebSocket connections on $connect only")
                authorizer = authorizers[route["AuthorizerId"]]
                if authorizer.get("IdentitySource") != ["route.request.querystring.token"]:
                    raise CannotEmulate("the local WebSocket API reads the token from ?token= only")
                connect_authorizer = self._function_of(authorizer["AuthorizerUri"])
        stage = next((p for _, p in of_api("AWS::ApiGatewayV2::Stage")), {})
        throttle = stage.get("DefaultRouteSettings") or {}
        return WebSocketApiSpec(
            api_id=self.stack.physical[logical_id],
            stage=stage.get("StageName", "prod"),
            route_selection=props.get("RouteSelectionExpression", "$request.body.action"),
            routes=routes,
            connect_authorizer=connect_authorizer,
            throttle_rate=throttle.get("ThrottlingRateLimit"),
            throttle_burst=throttle.get("ThrottlingBurstLimit"),
            endpoint=str(self._get_att(logical_id, "ApiEndpoint")),
        )
