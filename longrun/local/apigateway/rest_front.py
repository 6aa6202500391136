"""API Gateway (REST) for the local cloud: HTTP in, Lambda proxy events (v1) out.

It follows the template's API definition: the routes and their Lambda proxy integrations, the
TOKEN authorizer with its identity header and result cache, the stage's throttling, and the
gateway responses (API Gateway's own errors, such as an unknown route or a refused token, in the
body the template gives them). Integration requests time out after 29 seconds, as on AWS.

Routes that API Gateway answers from S3 with a role (the web console's ``/static/{proxy+}``) are
read from moto's S3, and the template's integration responses (status by selection pattern, header
mappings, templates) shape the answer. Beside the template's routes, the local API serves the web
console from disk at ``/console/`` (:mod:`longrun.local.console`), so an edit shows on reload.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import ClientError

from longrun.local.apigateway.resources import RestApiSpec, RestAuthorizer, RestRoute
from longrun.local.apigateway.throttle import TokenBucket
from longrun.local.awslambda.runtime import LambdaRuntime, ServiceFailure, Throttled
from longrun.local.cloudformation.engine import ACCOUNT_ID
from longrun.local.console import ConsoleFiles
from longrun.local.http_util import Handler, Service

log = logging.getLogger("longrun.local.rest")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
DEFAULT_STATUS = {
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "AUTHORIZER_FAILURE": 500,
    "THROTTLED": 429,
    "REQUEST_TOO_LARGE": 413,
    "INTEGRATION_FAILURE": 502,
    "INTEGRATION_TIMEOUT": 504,
}


class _Refusal(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class RestFront(Service):
    name = "rest-front"

    def __init__(
        self,
        host: str,
        port: int,
        spec: RestApiSpec,
        runtime: LambdaRuntime,
        region: str,
        *,
        s3: Any = None,
        console: ConsoleFiles | None = None,
        websocket_alias: tuple[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.runtime = runtime
        self.region = region
        self.s3 = s3  # a boto3 S3 client against moto, for the routes the template answers from S3
        self.console = console
        # (the WebSocket API's ApiEndpoint as the template resolves it locally, the local ws:// URL):
        # a static header of an S3 route that names the one (the console's CSP) names the other.
        self.websocket_alias = websocket_alias
        self.bucket = TokenBucket(spec.throttle_rate, spec.throttle_burst)
        self._auth_cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._auth_lock = threading.Lock()
        front = self

        class RequestHandler(Handler):
            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except ConnectionError:
                    self.close_connection = True

            def _any(self) -> None:
                front.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY, …) is no API Gateway method: no route matches it, so
                # it gets the gateway's "Missing Authentication Token" answer, never http.server's 501.
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

        super().__init__(host, port, RequestHandler)

    # --- API Gateway's own answers ------------------------------------------------------------

    def _gateway_response(self, handler: Handler, kind: str, message: str, request_id: str) -> None:
        responses = self.spec.gateway_responses
        family = "DEFAULT_5XX" if DEFAULT_STATUS.get(kind, 500) >= 500 else "DEFAULT_4XX"
        config = responses.get(kind) or responses.get(family) or {}
        status = int(config.get("statusCode") or DEFAULT_STATUS.get(kind, 500))
        template = (config.get("responseTemplates") or {}).get("application/json")
        if template:
            body = template.replace("$context.error.messageString", json.dumps(message)).replace(
                "$context.error.message", message
            )
        else:
            body = json.dumps({"message": message})
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id, "x-amzn-ErrorType": kind}
        if kind == "THROTTLED":
            headers["Retry-After"] = "1"
        handler.reply(status, body, headers)

    # --- requests -----------------------------------------------------------------------------

    def _address(self, path: str) -> tuple[str, str, str | None]:
        """(the path the routes see, the event's ``path``, the custom domain) of a request for ``path``.

        API Gateway's three shapes (api/mapping.py in the handlers reads them): a custom domain's
        mapping ``/{base path}/…`` routes without the base path but leaves it in the event's
        ``path``; the stage URL ``/{stage}/…`` routes and passes the path without the stage; and the
        local root is a domain's root mapping, where both are the path as asked. In each,
        ``requestContext.path`` is the path as asked.
        """
        for domain, key in sorted(self.spec.mappings, key=lambda m: -len(m[1])):  # the longest path wins
            prefix = f"/{key}" if key else ""
            if key and (path == prefix or path.startswith(prefix + "/")):
                return path[len(prefix) :] or "/", path, domain
        stage = f"/{self.spec.stage}"
        if path == stage or path.startswith(stage + "/"):
            routed = path[len(stage) :] or "/"
            return routed, routed, None
        return path, path, None

    def handle(self, handler: Handler) -> None:
        request_id = str(uuid.uuid4())
        url = urlsplit(handler.path)
        method = handler.command
        routed, _, _ = self._address(url.path)
        if self.console is not None and method in ("GET", "HEAD") and routed.split("/")[1:2] == ["console"]:
            status, data, headers = self.console.answer(routed)
            handler.reply(status, data, {**headers, "x-amzn-RequestId": request_id})
            return
        try:
            length = int(handler.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD_BYTES:
                handler.close_connection = True
                raise _Refusal("REQUEST_TOO_LARGE", "Request Too Long")
            body = handler.body()
            route, path_params = self._route(method, routed)
            if not self.bucket.take():
                raise _Refusal("THROTTLED", "Too Many Requests")
            api = f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.spec.api_id}"
            method_arn = f"{api}/{self.spec.stage}/{method}{routed}"
            authorizer = self._authorize(route, handler, method_arn) if route.authorizer else None
            if route.s3 is not None:
                self._integrate_s3(handler, route, path_params, request_id)
                return
            event = self._event(handler, route, url, path_params, body, authorizer, request_id)
            self._integrate(handler, route, event, request_id)
        except _Refusal as refusal:
            self._gateway_response(handler, refusal.kind, refusal.message, request_id)

    def _route(self, method: str, path: str) -> tuple[RestRoute, dict[str, str]]:
        for route in self.spec.routes:
            match = route.pattern.match(path)
            if match and route.method in (method, "X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY"):
                return route, match.groupdict()
        raise _Refusal("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")

    def _authorize(self, route: RestRoute, handler: Handler, method_arn: str) -> dict[str, Any]:
        assert route.authorizer is not None
        config: RestAuthorizer = self.spec.authorizers[route.authorizer]
        token = handler.headers.get(config.header)
        if not token:
            raise _Refusal("UNAUTHORIZED", "Unauthorized")
        cache_key = (route.authorizer, token)
        now = time.monotonic()
        with self._auth_lock:
            cached = self._auth_cache.get(cache_key)
        if cached and cached[0] > now:
            result = cached[1]
        else:
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
            try:
                outcome = self.runtime.invoke(config.function, event)
            except (Throttled, ServiceFailure):  # API Gateway answers both as the authorizer failing: 500
                raise _Refusal("AUTHORIZER_FAILURE", "Authorizer throttled") from None
            payload = json.loads(outcome.payload or b"null")
            if outcome.function_error:
                if isinstance(payload, dict) and payload.get("errorMessage") == "Unauthorized":
                    raise _Refusal("UNAUTHORIZED", "Unauthorized")
                raise _Refusal("AUTHORIZER_FAILURE", "Authorizer error")
            if not isinstance(payload, dict) or "principalId" not in payload or "policyDocument" not in payload:
                raise _Refusal("AUTHORIZER_FAILURE", "Authorizer error")
            result = payload
            if config.ttl > 0:
                with self._auth_lock:
                    self._auth_cache[cache_key] = (now + config.ttl, result)
        if not _allows(result["policyDocument"], method_arn):
            raise _Refusal("ACCESS_DENIED", "User is not authorized to access this resource")
        context = {k: v for k, v in (result.get("context") or {}).items()}
        return {"principalId": result["principalId"], **context}

    def _event(
        self,
        handler: Handler,
        route: RestRoute,
        url: Any,
        path_params: dict[str, str],
        body: bytes,
        authorizer: dict[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for name, value in handler.headers.items():
            multi_headers.setdefault(name, []).append(value)
        query = parse_qs(url.query, keep_blank_values=True)
        text = body.decode("utf-8", errors="replace") if body else None
        _, event_path, domain = self._address(url.path)
        return {
            "resource": route.path,
            "path": event_path,
            "httpMethod": handler.command,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.spec.api_id,
                "stage": self.spec.stage,
                "requestId": request_id,
                "resourcePath": route.path,
                "httpMethod": handler.command,
                "path": url.path,  # as the client asked it (see _address)
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(time.time() * 1000),
                "domainName": domain or handler.headers.get("Host", ""),
                "identity": {"sourceIp": handler.client_address[0], "userAgent": handler.headers.get("User-Agent")},
                "authorizer": authorizer,
            },
            "body": text,
            "isBase64Encoded": False,
        }

    def _integrate(self, handler: Handler, route: RestRoute, event: dict[str, Any], request_id: str) -> None:
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["outcome"] = self.runtime.invoke(route.function, event)
            except Exception as e:  # surfaced below as an integration failure
                result["error"] = e

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(29)
        if worker.is_alive():
            raise _Refusal("INTEGRATION_TIMEOUT", "Endpoint request timed out")
        outcome = result.get("outcome")
        if outcome is None or outcome.function_error:
            if outcome is not None:
                log.warning("integration failed: %s", outcome.payload[:2000])
            raise _Refusal("INTEGRATION_FAILURE", "Internal server error")
        try:
            response = json.loads(outcome.payload)
            status = int(response["statusCode"])
        except (ValueError, KeyError, TypeError):
            raise _Refusal("INTEGRATION_FAILURE", "Internal server error") from None
        headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ", ".join(str(v) for v in values)
        headers["x-amzn-RequestId"] = request_id
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            import base64

            data = base64.b64decode(body)
        else:
            data = str(body).encode()
        handler.reply(status, data, headers)

    def _integrate_s3(self, handler: Handler, route: RestRoute, path_params: dict[str, str], request_id: str) -> None:
        """GetObject as the route's role would, then the template's integration response for S3's status.

        IAM is not enforced locally (moto's default), so a key outside the role's prefix is read
        with the local credentials; the template keeps such keys out by its URI's fixed prefix.
        """
        integration = route.s3
        assert integration is not None
        if self.s3 is None:
            raise _Refusal("INTEGRATION_FAILURE", "Internal server error")
        key = integration.key
        for placeholder, parameter in integration.path_parameters.items():
            key = key.replace("{" + placeholder + "}", unquote(path_params.get(parameter, "")))
        data = b""
        upstream: dict[str, str] = {}
        if any(part in (".", "..") for part in key.split("/")):
            status = 404  # what S3 answers for such a key (none is ever uploaded)
        else:
            try:
                answer = self.s3.get_object(Bucket=integration.bucket, Key=key)
                status, data = 200, answer["Body"].read()
                upstream = answer["ResponseMetadata"].get("HTTPHeaders", {})
            except ClientError as e:
                status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
                upstream = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            except Exception:
                log.exception("S3 integration of %s failed", route.path)
                status = 500
        # Selection patterns of a non-proxy integration match the whole status code of the service.
        selected = (r for p, r in integration.responses.items() if p != "default" and re.fullmatch(p, str(status)))
        chosen = next(selected, integration.responses.get("default"))
        if chosen is None:
            raise _Refusal("INTEGRATION_FAILURE", "Internal server error")
        lowered = {name.lower(): value for name, value in upstream.items()}
        headers: dict[str, str] = {}
        for target, source in (chosen.get("responseParameters") or {}).items():
            value: str | None
            if source.startswith("'") and source.endswith("'") and len(source) >= 2:
                value = source[1:-1]
                if self.websocket_alias:
                    value = value.replace(*self.websocket_alias)
            else:
                value = lowered.get(source.removeprefix("integration.response.header.").lower())
            if value is not None:
                headers[target.removeprefix("method.response.header.")] = value
        templates = chosen.get("responseTemplates") or {}
        if templates:
            content_type, template = next(iter(templates.items()))
            data = str(template).encode()
            headers.setdefault("Content-Type", content_type)
        headers.setdefault("Content-Type", "application/json")
        headers["x-amzn-RequestId"] = request_id
        handler.reply(int(chosen.get("statusCode", 200)), data, headers)


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for one method: an explicit Deny wins, else an Allow."""
    allowed = False
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        # IAM action names are case-insensitive; resource ARNs are not.
        if not any(fnmatch.fnmatchcase("execute-api:invoke", a.lower()) for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
