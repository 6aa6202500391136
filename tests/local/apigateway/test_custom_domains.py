"""The local cloud's custom domain names, API mappings and Route 53 records: AWS's create-time rules.

Each check runs the engine's own step over the translated template with the domain parameters set
(tests/infra/test_custom_domains.py), with one property planted as AWS would refuse it: the rule
the local cloud applies must name it, and the template as written must pass.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from longrun.local.apigateway import domains
from longrun.local.apigateway.resources import RestApiSpec, WebSocketApiSpec
from longrun.local.cloudformation.engine import StackBuilder
from longrun.local.refusals import AwsRefused
from longrun.local.route53 import resources as route53
from tests.infra.test_aws_limits import _builder
from tests.infra.test_custom_domains import CERT, CREATED
from tests.infra.translated import translated


def built(plant: Any = None, parameters: dict[str, str] | None = None) -> StackBuilder:
    """The builder with its APIs read as the REST and WebSocket steps read them, then the domains' step run."""
    cfn = copy.deepcopy(translated())
    if plant is not None:
        plant(cfn["Resources"])
    builder = _builder(cfn, parameters or CREATED)
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in builder.resources.items():
        if "Condition" not in resource or builder.resolver.condition(resource["Condition"]):
            by_type.setdefault(resource["Type"], []).append(logical_id)
    builder.stack.rest_api = RestApiSpec(builder.ref("RestApi"), "prod", [], {}, {})
    builder.stack.websocket_api = WebSocketApiSpec(
        builder.ref("WebSocketApi"), "prod", "$request.body.action", {}, None
    )
    domains._mappings(builder, by_type)
    for step in route53.STEPS:
        step.run(builder, by_type)
    return builder


def props(name: str) -> Any:
    return lambda resources: resources[name]["Properties"]


def test_the_templates_domains_are_served_under_their_paths() -> None:
    builder = built()

    assert builder.stack.rest_api.mappings == [("platform.example.com", "api")]
    assert builder.stack.websocket_api.mappings == [("ws.platform.example.com", "events")]
    assert builder.get_att("RestApiDomain", "RegionalDomainName").endswith(".execute-api.us-east-1.amazonaws.com")


@pytest.mark.parametrize(
    ("plant", "rule"),
    [
        (lambda r: props("RestApiDomain")(r).update(RegionalCertificateArn=CERT.replace("us-east-1", "eu-west-1")),
         "certificate is in its region"),
        (lambda r: props("RestApiDomain")(r).pop("RegionalCertificateArn"), "needs an ACM certificate"),
        (lambda r: props("WebSocketApiDomain")(r)["DomainNameConfigurations"][0].update(EndpointType="EDGE"),
         "only regional domain names"),
        (lambda r: props("WebSocketApiDomain")(r)["DomainNameConfigurations"][0].update(SecurityPolicy="TLS_1_0"),
         "WebSocket API's domain name is TLS 1.2"),
        (lambda r: props("RestApiDomain")(r).update(SecurityPolicy="TLS_1_0") or props("RestApiMapping")(r).update(
            ApiMappingKey="api/v1"), "multi-level mapping needs a regional TLS 1.2"),
        (lambda r: props("RestApiMapping")(r).update(ApiMappingKey="api v1"), "API mapping's path"),
        (lambda r: props("RestApiMapping")(r).update(ApiMappingKey="x" * 301), "API mapping's path"),
        (lambda r: props("WebSocketApiMapping")(r).update(ApiMappingKey="events/v1"), "API mapping's path"),
        (lambda r: props("WebSocketApiMapping")(r).update(DomainName={"Ref": "RestApiDomain"}),
         "WebSocket API takes no REST"),
        (lambda r: props("RestApiMapping")(r).update(Stage="beta"), "stage of its API"),
        (lambda r: props("RestApiDomainRecord")(r).update(TTL="300"), "alias record has neither TTL"),
        (lambda r: props("RestApiDomainRecord")(r)["AliasTarget"].pop("HostedZoneId"), "alias names its target"),
    ],
    ids=["certificate-elsewhere", "no-certificate", "ws-edge", "ws-tls10", "levels-on-tls10", "path-space",
         "path-too-long", "ws-levels", "ws-beside-rest", "unknown-stage", "alias-with-ttl", "alias-without-zone"],
)  # fmt: skip
def test_what_aws_refuses_the_local_cloud_refuses(plant: Any, rule: str) -> None:
    with pytest.raises(AwsRefused, match=rule):
        built(plant)


def test_two_mappings_on_one_path_of_a_domain_are_refused() -> None:
    def plant(resources: dict[str, Any]) -> None:
        resources["RestApiMappingAgain"] = copy.deepcopy(resources["RestApiMapping"])

    with pytest.raises(AwsRefused, match="one mapping per path"):
        built(plant)
