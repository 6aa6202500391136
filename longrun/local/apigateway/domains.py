"""Custom domain names and API mappings of the template, checked as API Gateway checks them and served locally.

A domain name the stack creates (``AWS::ApiGateway::DomainName``, ``AWS::ApiGatewayV2::DomainName``)
is checked as API Gateway's create call would be: a regional endpoint with a certificate of the
stack's region, TLS 1.2 where a WebSocket API or a multi-level path needs it. Each
``AWS::ApiGatewayV2::ApiMapping`` is checked for its path (characters, length, levels) and for the
one rule that shapes the whole design: a domain name with a WebSocket API takes no REST API. A
domain name the stack only names (one that exists already) cannot be looked up here; its mappings
are checked as far as the template tells.

What is served: the mapping's base path, on the local fronts' own ports (nothing resolves
``platform.example.com`` to loopback). The REST front answers ``/{base path}/…`` as API Gateway
does for a custom domain (the event's ``path`` keeps the base path, :mod:`.rest_front`); the outputs
that name the domains name the fronts (``longrun.local.cloud``).
"""

from __future__ import annotations

import re
from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, Step, short_id
from longrun.local.refusals import AwsRefused

REST_MAPPINGS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-mappings.html"
WS_MAPPINGS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-mappings.html"
WS_DOMAINS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-custom-domain-names.html"
REGIONAL_DOMAINS = (
    "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html"
)
# Route 53's zone for regional API Gateway endpoints of us-east-1 (each region has its own).
REGIONAL_ZONE = "Z1UJRXOUMOOFQ8"
_REST_KEY = re.compile(r"[A-Za-z0-9$\-_.+!*'()/]+")
_WS_KEY = re.compile(r"[A-Za-z0-9$\-_.+!*'()]+")
_CERTIFICATE = re.compile(r"arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+")
_SECURITY_POLICIES = ("TLS_1_0", "TLS_1_2")


def _domain_name(builder: StackBuilder, logical_id: str) -> Any:
    return builder.resolver.resolve(builder.props(logical_id)["DomainName"])


def _regional_name(builder: StackBuilder, logical_id: str, ref: Any) -> str:
    return f"d-{short_id(str(ref), logical_id)}.execute-api.{builder.stack.region}.amazonaws.com"


def _certificate(resource: str, arn: Any, region: str) -> None:
    match = _CERTIFICATE.fullmatch(str(arn or ""))
    if not match:
        raise AwsRefused(resource, "a regional domain name needs an ACM certificate", f"certificate {arn!r}",
                         doc=REGIONAL_DOMAINS)  # fmt: skip
    if match["region"] != region:
        raise AwsRefused(resource, "a regional domain name's certificate is in its region",
                         f"{arn} is in {match['region']}, the stack in {region}", doc=REGIONAL_DOMAINS)  # fmt: skip


def _rest_domain(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """``AWS::ApiGateway::DomainName``: what the mappings on it need to know (regional, TLS 1.2)."""
    types = (props.get("EndpointConfiguration") or {}).get("Types") or ["EDGE"]
    policy = props.get("SecurityPolicy", "TLS_1_2")
    if policy not in _SECURITY_POLICIES and not str(policy).startswith("SecurityPolicy_"):
        raise AwsRefused(logical_id, "unknown security policy", str(policy), doc=REGIONAL_DOMAINS)
    if types == ["REGIONAL"]:
        if props.get("CertificateArn"):
            raise AwsRefused(logical_id, "a regional domain name takes RegionalCertificateArn",
                             "CertificateArn is for edge-optimized ones", doc=REGIONAL_DOMAINS)  # fmt: skip
        _certificate(logical_id, props.get("RegionalCertificateArn"), builder.stack.region)
    elif types == ["EDGE"]:
        _certificate(logical_id, props.get("CertificateArn"), "us-east-1")  # CloudFront's certificates
    else:
        raise AwsRefused(logical_id, "one endpoint type", f"Types {types}", doc=REGIONAL_DOMAINS)
    return {"regional": types == ["REGIONAL"], "tls12": policy != "TLS_1_0"}


def _websocket_domain(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    """``AWS::ApiGatewayV2::DomainName``: one regional configuration."""
    configurations = props.get("DomainNameConfigurations") or []
    if len(configurations) != 1:
        raise AwsRefused(logical_id, "one domain name configuration", f"{len(configurations)} given",
                         doc=REGIONAL_DOMAINS)  # fmt: skip
    (config,) = configurations
    if config.get("EndpointType", "REGIONAL") != "REGIONAL":
        raise AwsRefused(logical_id, "only regional domain names", str(config.get("EndpointType")), doc=WS_DOMAINS)
    policy = config.get("SecurityPolicy", "TLS_1_2")
    if policy not in _SECURITY_POLICIES:
        raise AwsRefused(logical_id, "unknown security policy", str(policy), doc=REGIONAL_DOMAINS)
    _certificate(logical_id, config.get("CertificateArn"), builder.stack.region)
    return {"regional": True, "tls12": policy == "TLS_1_2"}


def _mappings(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    """Check every domain name and API mapping; give each API its base paths to serve."""
    created: dict[str, dict[str, Any]] = {}
    for kind, check in (("AWS::ApiGateway::DomainName", _rest_domain),
                        ("AWS::ApiGatewayV2::DomainName", _websocket_domain)):  # fmt: skip
        for logical_id in by_type.get(kind, []):
            props = builder.resolver.resolve(builder.props(logical_id))
            created[str(props["DomainName"])] = check(builder, logical_id, props)
    rest, ws = builder.stack.rest_api, builder.stack.websocket_api
    apis_on: dict[str, set[str]] = {}
    keys_on: dict[str, set[str]] = {}
    for logical_id in by_type.get("AWS::ApiGatewayV2::ApiMapping", []):
        props = builder.resolver.resolve(builder.props(logical_id))
        domain, key = str(props["DomainName"]), str(props.get("ApiMappingKey", ""))
        api_id, stage = str(props["ApiId"]), str(props["Stage"])
        if rest is not None and api_id == rest.api_id:
            kind, spec, pattern, doc = "REST", rest, _REST_KEY, REST_MAPPINGS
        elif ws is not None and api_id == ws.api_id:
            kind, spec, pattern, doc = "WEBSOCKET", ws, _WS_KEY, WS_MAPPINGS
        else:
            raise AwsRefused(logical_id, "a mapping names an API of the account", f"no API {api_id}", doc=REST_MAPPINGS)
        if stage != spec.stage:
            raise AwsRefused(logical_id, "a mapping names a stage of its API", f"no stage {stage!r}", doc=doc)
        if key and (len(key) > 300 or not pattern.fullmatch(key) or "" in key.split("/")):
            raise AwsRefused(logical_id, "an API mapping's path: letters, digits and $-_.+!*'()"
                             + ("/ (levels)" if kind == "REST" else ""), f"{key!r}", doc=doc)  # fmt: skip
        known = created.get(domain)
        if "/" in key and known is not None and not (known["regional"] and known["tls12"]):
            raise AwsRefused(logical_id, "a multi-level mapping needs a regional TLS 1.2 domain name", key, doc=doc)
        if kind == "WEBSOCKET" and known is not None and not known["tls12"]:
            raise AwsRefused(logical_id, "a WebSocket API's domain name is TLS 1.2", domain, doc=WS_DOMAINS)
        apis_on.setdefault(domain, set()).add(kind)
        if apis_on[domain] == {"REST", "WEBSOCKET"}:
            raise AwsRefused(logical_id, "a domain name with a WebSocket API takes no REST or HTTP API", domain,
                             doc=WS_DOMAINS)  # fmt: skip
        if key in keys_on.setdefault(domain, set()):
            raise AwsRefused(logical_id, "one mapping per path of a domain name", f"{domain}/{key}", doc=doc)
        keys_on[domain].add(key)
        spec.mappings.append((domain, key))


TYPES = (
    ResourceType(
        "AWS::ApiGateway::DomainName",
        created_in_moto=False,
        ref=_domain_name,
        attributes={
            "RegionalDomainName": _regional_name,
            "RegionalHostedZoneId": lambda b, lid, ref: REGIONAL_ZONE,
        },
    ),
    ResourceType(
        "AWS::ApiGatewayV2::DomainName",
        created_in_moto=False,
        ref=_domain_name,
        attributes={
            "RegionalDomainName": _regional_name,
            "RegionalHostedZoneId": lambda b, lid, ref: REGIONAL_ZONE,
        },
    ),
    ResourceType("AWS::ApiGatewayV2::ApiMapping", created_in_moto=False),
)
# After both APIs are read (140, 150): their mappings join them.
STEPS = (Step(155, "the custom domains' API mappings", _mappings),)
