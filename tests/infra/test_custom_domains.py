"""The template's custom domains (section "custom domains", docs/deploy.md "One domain").

- with the default parameters nothing of them is made, and the outputs, the API function and the
  console's policy are today's (the stage URLs);
- with a domain the stack creates (certificate, Route 53 zone) or one that exists (mappings only),
  exactly those resources are made, with the paths, stage and URLs a user reads;
- the Rules refuse every parameter set that means nothing (a certificate without a domain, a path
  without its domain, a zone without a certificate, one domain for both APIs), and the parameters'
  patterns the paths API Gateway refuses;
- cfn-lint passes on the translated template with those conditions true (its defaults set so).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from longrun.local.refusals import AwsRefused
from tests.infra.test_aws_limits import _builder
from tests.infra.test_judges import _cfn_lint
from tests.infra.test_template_layout import TEMPLATE, sections
from tests.infra.translated import translated, write

SECTION = "custom domains"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ZONE = "Z0123456789ABCDEFGHIJ"
CREATED = {
    "RestApiDomainName": "platform.example.com",
    "RestApiBasePath": "api",
    "WebSocketDomainName": "ws.platform.example.com",
    "WebSocketBasePath": "events",
    "DomainCertificateArn": CERT,
    "HostedZoneId": ZONE,
}
EXISTING = {"RestApiDomainName": "platform.example.com", "RestApiBasePath": "longrun/v1",
            "WebSocketDomainName": "ws.platform.example.com"}  # fmt: skip
DOMAIN_TYPES = {
    "AWS::ApiGateway::DomainName", "AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping",
    "AWS::ApiGateway::BasePathMapping", "AWS::Route53::RecordSet", "AWS::Route53::RecordSetGroup",
}  # fmt: skip
STAGE_URL = "https://{api}.execute-api.us-east-1.amazonaws.com/prod"


def made(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The resources the parameters create, each with its properties resolved."""
    builder = _builder(translated(), parameters)
    builder._check_rules()
    return {
        logical_id: builder.resolver.resolve(resource.get("Properties") or {})
        for logical_id, resource in builder.resources.items()
        if "Condition" not in resource or builder.resolver.condition(resource["Condition"])
    }


def outputs(parameters: dict[str, str]) -> dict[str, Any]:
    builder = _builder(translated(), parameters)
    return {
        name: builder.resolver.resolve(spec["Value"])
        for name, spec in translated()["Outputs"].items()
        if "Condition" not in spec or builder.resolver.condition(spec["Condition"])
    }


def section_resources() -> set[str]:
    _, section_of = sections(TEMPLATE)
    return {name for name, title in section_of.items() if title == SECTION}


def console_policy(resources: dict[str, dict[str, Any]]) -> str:
    integration = resources["RestApi"]["Body"]["paths"]["/static/{proxy+}"]["get"]["x-amazon-apigateway-integration"]
    return integration["responses"]["default"]["responseParameters"]["method.response.header.Content-Security-Policy"]


def test_the_default_parameters_make_nothing_of_the_domains() -> None:
    resources = made({})
    ours = section_resources()

    assert ours == {"RestApiDomain", "RestApiMapping", "RestApiDomainRecord",
                    "WebSocketApiDomain", "WebSocketApiMapping", "WebSocketApiDomainRecord"}  # fmt: skip
    assert not ours & set(resources)
    every = translated()["Resources"]
    assert {n for n, r in every.items() if r["Type"] in DOMAIN_TYPES} == ours  # none elsewhere
    assert all("Condition" in every[n] for n in ours)
    api = _builder(translated()).ref("RestApi")
    assert outputs({})["RestApiUrl"] == STAGE_URL.format(api=api)
    assert outputs({})["ConsoleUrl"] == STAGE_URL.format(api=api) + "/static/console/index.html"
    assert outputs({})["WebSocketUrl"].endswith("/prod") and "wss://" not in outputs({})["WebSocketUrl"][3:]
    assert {"RestApiDomainTarget", "WebSocketDomainTarget"}.isdisjoint(outputs({}))
    assert resources["ApiFunction"]["Environment"]["Variables"]["API_BASE_PATH"] == ""
    assert "wss://" not in console_policy(resources).split("connect-src", 1)[1].split(";")[0].replace(
        "wss://abc.execute-api", ""
    )


def test_domains_the_stack_creates_are_regional_tls12_with_their_records() -> None:
    resources = made(CREATED)

    assert section_resources() <= set(resources)
    rest = resources["RestApiDomain"]
    assert rest == {"DomainName": "platform.example.com", "RegionalCertificateArn": CERT,
                    "EndpointConfiguration": {"Types": ["REGIONAL"]}, "SecurityPolicy": "TLS_1_2"}  # fmt: skip
    (config,) = resources["WebSocketApiDomain"]["DomainNameConfigurations"]
    assert config == {"CertificateArn": CERT, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}
    builder = _builder(translated(), CREATED)
    assert resources["RestApiMapping"] == {"DomainName": "platform.example.com", "ApiId": builder.ref("RestApi"),
                                           "Stage": "prod", "ApiMappingKey": "api"}  # fmt: skip
    assert resources["WebSocketApiMapping"]["ApiMappingKey"] == "events"
    assert resources["WebSocketApiMapping"]["ApiId"] == builder.ref("WebSocketApi")
    record = resources["RestApiDomainRecord"]
    assert (record["HostedZoneId"], record["Name"], record["Type"]) == (ZONE, "platform.example.com", "A")
    assert set(record["AliasTarget"]) == {"DNSName", "HostedZoneId"}
    assert resources["ApiFunction"]["Environment"]["Variables"]["API_BASE_PATH"] == "api"
    assert "wss://ws.platform.example.com" in console_policy(resources)
    found = outputs(CREATED)
    assert found["RestApiUrl"] == "https://platform.example.com/api"
    assert found["ConsoleUrl"] == "https://platform.example.com/api/static/console/index.html"
    assert found["WebSocketUrl"] == "wss://ws.platform.example.com/events"
    assert found["RestApiStageUrl"] == STAGE_URL.format(api=builder.ref("RestApi"))
    assert {"RestApiDomainTarget", "WebSocketDomainTarget"} <= set(found)


def test_existing_domains_get_their_mappings_only() -> None:
    resources = made(EXISTING)

    assert set(resources) & section_resources() == {"RestApiMapping", "WebSocketApiMapping"}
    assert resources["RestApiMapping"]["DomainName"] == "platform.example.com"
    assert resources["RestApiMapping"]["ApiMappingKey"] == "longrun/v1"
    assert "ApiMappingKey" not in resources["WebSocketApiMapping"]  # the domain's root
    found = outputs(EXISTING)
    assert (found["RestApiUrl"], found["WebSocketUrl"]) == (
        "https://platform.example.com/longrun/v1", "wss://ws.platform.example.com")  # fmt: skip


@pytest.mark.parametrize(
    ("parameters", "rule"),
    [
        ({"RestApiBasePath": "api"}, "RestBasePathNeedsDomain"),
        ({"WebSocketBasePath": "events"}, "WebSocketBasePathNeedsDomain"),
        ({"DomainCertificateArn": CERT}, "CertificateNeedsDomain"),
        ({"RestApiDomainName": "platform.example.com", "HostedZoneId": ZONE}, "HostedZoneNeedsCertificate"),
        ({"RestApiDomainName": "platform.example.com", "WebSocketDomainName": "platform.example.com"},
         "DomainsDiffer"),
    ],
    ids=["path-without-domain", "ws-path-without-domain", "certificate-alone", "zone-without-certificate",
         "one-domain-for-both"],
)  # fmt: skip
def test_the_rules_refuse_parameters_that_mean_nothing(parameters: dict[str, str], rule: str) -> None:
    with pytest.raises(AwsRefused) as refused:
        made(parameters)
    assert refused.value.resource == f"Rules.{rule}"
    assert refused.value.message  # the AssertDescription a user reads


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RestApiBasePath", "a//b"),
        ("RestApiBasePath", "/api"),
        ("RestApiBasePath", "api v1"),
        ("RestApiBasePath", "x" * 301),
        ("WebSocketBasePath", "events/v1"),  # a WebSocket mapping has one level
        ("RestApiDomainName", "Platform.Example.com"),
        ("DomainCertificateArn", "arn:aws:iam::123456789012:server-certificate/x"),
    ],
)
def test_the_parameters_refuse_what_api_gateway_refuses(name: str, value: str) -> None:
    parameters = {"RestApiDomainName": "platform.example.com", "WebSocketDomainName": "ws.platform.example.com",
                  name: value}  # fmt: skip
    with pytest.raises(AwsRefused, match=f"parameter {name}"):
        made(parameters)


@pytest.mark.parametrize("parameters", [CREATED, EXISTING], ids=["created", "existing"])
def test_cfn_lint_passes_with_the_domains_made(tmp_path: Path, parameters: dict[str, str]) -> None:
    """cfn-lint on the translated template whose defaults are the domain parameters: their conditions true."""
    cfn = copy.deepcopy(translated())
    for name, value in parameters.items():
        cfn["Parameters"][name]["Default"] = value
    matches = _cfn_lint(write(cfn, tmp_path / "with-domains.json"))
    assert matches == [], "\n".join(f"{m['Rule']['Id']} {m['Message']} ({m['Location']['Path']})" for m in matches)


def test_cfn_lint_reads_the_domain_resources(tmp_path: Path) -> None:
    """A planted mapping without its API is an error: cfn-lint reads the resources whose conditions hold."""
    cfn = copy.deepcopy(translated())
    for name, value in CREATED.items():
        cfn["Parameters"][name]["Default"] = value
    del cfn["Resources"]["WebSocketApiMapping"]["Properties"]["ApiId"]
    matches = _cfn_lint(write(cfn, tmp_path / "planted.json"))
    assert [m["Rule"]["Id"] for m in matches if "WebSocketApiMapping" in json.dumps(m["Location"])] == ["E3003"]
