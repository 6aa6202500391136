"""The template's REST and WebSocket APIs, read into what the local fronts serve.

See :mod:`.rest_front` and :mod:`.websocket_front`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from longrun.local import aws_rules
from longrun.local.cloudformation.engine import CannotEmulate, ResourceType, StackBuilder, Step, short_id

_FUNCTION_URI = re.compile(r"functions/(arn:[^/]+)/invocations")
# An API Gateway AWS service integration with S3 by path: arn:aws:apigateway:{region}:s3:path/{bucket}/{key}
_S3_PATH_URI = re.compile(r"^arn:[^:]+:apigateway:[^:]*:s3:path/([^/{}]+)/(.+)$")


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
    # (custom domain, base path) of each API mapping onto the stage (.domains): served under the path.
    mappings: list[tuple[str, str]] = field(default_factory=list)


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
    mappings: list[tuple[str, str]] = field(default_factory=list)  # (custom domain, base path), .domains


def _function_of(uri: str) -> str:
    match = _FUNCTION_URI.search(uri)
    if not match:
        raise CannotEmulate(f"integration {uri} is not a Lambda proxy integration")
    return match.group(1).rsplit(":", 1)[-1]


def _rest_api(builder: StackBuilder, logical_id: str, by_type: dict[str, list[str]]) -> RestApiSpec:
    props = builder.resolver.resolve(builder.props(logical_id))
    body = props.get("Body") or {}
    authorizers = {}
    for name, definition in (body.get("securityDefinitions") or {}).items():
        auth = definition.get("x-amazon-apigateway-authorizer")
        if not auth:
            continue
        if auth.get("type") != "token":
            raise CannotEmulate(f"{logical_id}: only TOKEN authorizers are emulated, not {auth.get('type')}")
        authorizers[name] = RestAuthorizer(
            function=_function_of(auth["authorizerUri"]),
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
                        s3=_s3_integration(where, integration),
                    )
                )
                continue
            if integration.get("type") != "aws_proxy":
                raise CannotEmulate(f"{where}: only Lambda proxy integrations and S3 GETs by path")
            routes.append(
                RestRoute(
                    method=method.upper(),
                    path=path,
                    function=_function_of(integration["uri"]),
                    authorizer=security[0] if security else None,
                )
            )
    stage_id = next(
        (
            s
            for s in by_type.get("AWS::ApiGateway::Stage", [])
            if builder.props(s).get("RestApiId") == {"Ref": logical_id}
        ),
        None,
    )
    stage_props = builder.resolver.resolve(builder.props(stage_id)) if stage_id else {}
    throttle = next(iter(stage_props.get("MethodSettings", [])), {})
    return RestApiSpec(
        api_id=builder.stack.physical[logical_id],
        stage=stage_props.get("StageName", "prod"),
        routes=routes,
        authorizers=authorizers,
        gateway_responses=body.get("x-amazon-apigateway-gateway-responses") or {},
        throttle_rate=throttle.get("ThrottlingRateLimit"),
        throttle_burst=throttle.get("ThrottlingBurstLimit"),
    )


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


def _websocket_api(builder: StackBuilder, logical_id: str, by_type: dict[str, list[str]]) -> WebSocketApiSpec:
    props = builder.resolver.resolve(builder.props(logical_id))
    if props.get("ProtocolType") != "WEBSOCKET":
        raise CannotEmulate(f"{logical_id}: only WEBSOCKET APIs are emulated")

    def of_api(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (lid, builder.resolver.resolve(builder.props(lid)))
            for lid in by_type.get(kind, [])
            if builder.props(lid).get("ApiId") == {"Ref": logical_id}
        ]

    integration_props = of_api("AWS::ApiGatewayV2::Integration")
    for lid, integration in integration_props:
        aws_rules.websocket_integration_timeout(lid, integration.get("TimeoutInMillis"))
    integrations = {builder.stack.physical[lid]: p for lid, p in integration_props}
    authorizers = {builder.stack.physical[lid]: p for lid, p in of_api("AWS::ApiGatewayV2::Authorizer")}
    routes: dict[str, str] = {}
    connect_authorizer = None
    for _, route in of_api("AWS::ApiGatewayV2::Route"):
        integration = integrations[route["Target"].split("/", 1)[1]]
        if integration.get("IntegrationType") != "AWS_PROXY":
            raise CannotEmulate(f"{logical_id} {route['RouteKey']}: only AWS_PROXY integrations")
        routes[route["RouteKey"]] = _function_of(integration["IntegrationUri"])
        if route.get("AuthorizationType") == "CUSTOM":
            if route["RouteKey"] != "$connect":
                raise CannotEmulate("API Gateway authorizes WebSocket connections on $connect only")
            authorizer = authorizers[route["AuthorizerId"]]
            if authorizer.get("IdentitySource") != ["route.request.querystring.token"]:
                raise CannotEmulate("the local WebSocket API reads the token from ?token= only")
            connect_authorizer = _function_of(authorizer["AuthorizerUri"])
    stage = next((p for _, p in of_api("AWS::ApiGatewayV2::Stage")), {})
    throttle = stage.get("DefaultRouteSettings") or {}
    return WebSocketApiSpec(
        api_id=builder.stack.physical[logical_id],
        stage=stage.get("StageName", "prod"),
        route_selection=props.get("RouteSelectionExpression", "$request.body.action"),
        routes=routes,
        connect_authorizer=connect_authorizer,
        throttle_rate=throttle.get("ThrottlingRateLimit"),
        throttle_burst=throttle.get("ThrottlingBurstLimit"),
        endpoint=str(builder.get_att(logical_id, "ApiEndpoint")),
    )


def _rest_apis(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    for logical_id in by_type.get("AWS::ApiGateway::RestApi", []):
        builder.stack.rest_api = _rest_api(builder, logical_id, by_type)


def _websocket_apis(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    for logical_id in by_type.get("AWS::ApiGatewayV2::Api", []):
        builder.stack.websocket_api = _websocket_api(builder, logical_id, by_type)


def _stage_name(builder: StackBuilder, logical_id: str) -> Any:
    return builder.resolver.resolve(builder.props(logical_id)["StageName"])


def _local(name: str) -> ResourceType:
    return ResourceType(name, created_in_moto=False)


TYPES = (
    ResourceType(
        "AWS::ApiGateway::RestApi",  # rest_front
        created_in_moto=False,
        attributes={"RootResourceId": lambda b, lid, ref: short_id(str(ref), "root")},
    ),
    _local("AWS::ApiGateway::Deployment"),
    ResourceType("AWS::ApiGateway::Stage", created_in_moto=False, ref=_stage_name),
    # Applies to requests made with the API keys attached to it; the stack attaches none and the
    # local REST front takes none, so it changes nothing here (the stage's throttle is applied).
    _local("AWS::ApiGateway::UsagePlan"),
    ResourceType(
        "AWS::ApiGatewayV2::Api",  # websocket_front
        created_in_moto=False,
        attributes={
            # The local @connections API; on AWS this is wss://{api}.execute-api.{region}.amazonaws.com
            "ApiEndpoint": lambda b, lid, ref: f"{b.ws_management_base}/{ref}",
            "ApiId": lambda b, lid, ref: ref,
        },
    ),
    _local("AWS::ApiGatewayV2::Route"),
    _local("AWS::ApiGatewayV2::Integration"),
    _local("AWS::ApiGatewayV2::Authorizer"),
    _local("AWS::ApiGatewayV2::Deployment"),
    ResourceType("AWS::ApiGatewayV2::Stage", created_in_moto=False, ref=_stage_name),
)
STEPS = (
    Step(140, "the REST API", _rest_apis),
    Step(150, "the WebSocket API", _websocket_apis),
)
