"""The web console's deployed shape in infra/template.yaml: ``GET /static/{proxy+}`` answered from S3.

- the route reads a fixed ``static/`` prefix of the projects bucket, through a role that may only
  ``s3:GetObject`` there, so no URL reaches a project's files;
- it is the one method without the token authorizer (after SAM merged the functions' routes in);
- its headers are those the local cloud gives ``/console/``: the same Content-Security-Policy
  (longrun/local/console.py), ``Cache-Control: no-cache``, ``nosniff``;
- S3's 4xx (a missing key, or one the role may not read) is answered 404, never 403.
"""

from __future__ import annotations

from typing import Any

from longrun.local.console import content_security_policy
from tests.infra.test_template import translated

ROUTE = "/static/{proxy+}"


def _body() -> dict[str, Any]:
    return translated()["Resources"]["RestApi"]["Properties"]["Body"]


def _integration() -> dict[str, Any]:
    return _body()["paths"][ROUTE]["get"]["x-amazon-apigateway-integration"]


def test_static_route_reads_only_the_static_prefix_with_its_role() -> None:
    integration = _integration()
    assert integration["type"] == "aws" and integration["httpMethod"] == "GET"
    assert integration["uri"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:s3:path/${ProjectsBucket}/static/{proxy}"
    }
    assert integration["credentials"] == {"Fn::GetAtt": ["StaticFilesRole", "Arn"]}
    assert integration["requestParameters"] == {"integration.request.path.proxy": "method.request.path.proxy"}

    role = translated()["Resources"]["StaticFilesRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Sid": "StaticFiles",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": {"Fn::Sub": "${ProjectsBucket.Arn}/static/*"},
        }
    ]
    assert "ManagedPolicyArns" not in role


def test_only_the_static_route_goes_without_the_authorizer() -> None:
    for path, methods in _body()["paths"].items():
        for method, operation in methods.items():
            names = [name for requirement in operation.get("security", []) for name in requirement]
            if path == ROUTE:
                assert names == ["NONE"], (path, method)  # SAM's marker for "no authorizer"
            else:
                assert names == ["TokenAuthorizer"], (path, method)


def test_static_files_carry_the_consoles_headers() -> None:
    responses = _integration()["responses"]
    ok = responses["default"]
    assert ok["statusCode"] == "200"
    parameters = ok["responseParameters"]
    assert parameters["method.response.header.Content-Type"] == "integration.response.header.Content-Type"
    assert parameters["method.response.header.Cache-Control"] == "'no-cache'"
    assert parameters["method.response.header.X-Content-Type-Options"] == "'nosniff'"
    policy, variables = parameters["method.response.header.Content-Security-Policy"]["Fn::Sub"]
    assert policy == f"'{content_security_policy('${WebSocketOrigins}')}'"
    # The WebSocket's stage, and its custom domain when it has one (section "custom domains").
    assert variables == {"WebSocketOrigins": {"Fn::If": [
        "HasWebSocketDomain",
        {"Fn::Sub": "${WebSocketApi.ApiEndpoint} wss://${WebSocketDomainName}"},
        {"Fn::GetAtt": ["WebSocketApi", "ApiEndpoint"]},
    ]}}  # fmt: skip
    declared = _body()["paths"][ROUTE]["get"]["responses"]["200"]["headers"]
    assert {f"method.response.header.{name}" for name in declared} >= set(parameters)
    assert responses["4\\d{2}"]["statusCode"] == "404"
