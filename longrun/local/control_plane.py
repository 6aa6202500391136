"""The local cloud's internal HTTP endpoint: Lambda's Invoke API and API Gateway's ``@connections`` API.

* ``POST /2015-03-31/functions/{name}/invocations`` — reached through the AWS endpoint (moto's
  process forwards it here), as boto3's ``lambda`` client and Step Functions call it.
* ``POST|GET|DELETE /@ws/{apiId}/{stage}/@connections/{connectionId}`` — what handlers reach with
  boto3's ``apigatewaymanagementapi`` client; the WebSocket API's ``ApiEndpoint`` attribute points
  here, so ``{ApiEndpoint}/{stage}`` is the management endpoint locally as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from longrun.local.awslambda.runtime import LambdaRuntime, ServiceFailure, Throttled
from longrun.local.faults import Faults
from longrun.local.http_util import Handler, Service

if TYPE_CHECKING:
    from longrun.local.apigateway.websocket_front import WebSocketFront

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_CONNECTIONS = re.compile(r"^/@ws/(?P<api>[^/]+)/(?P<stage>[^/]+)/@connections/(?P<id>[^/?]+)$")
MAX_POST_BYTES = 128 * 1024  # API Gateway's limit for a message posted to a connection


def _aws_error(handler: Handler, status: int, code: str, message: str) -> None:
    handler.reply(
        status,
        {"message": message, "Message": message, "__type": code},
        # Every AWS answer names its request; Step Functions quotes it in a task's error cause.
        {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


class ControlPlane(Service):
    name = "control-plane"

    def __init__(self, host: str, port: int, runtime: LambdaRuntime | None = None) -> None:
        self.runtime = runtime
        self.websocket: WebSocketFront | None = None
        self.faults = Faults()  # ws.gone: see longrun.local.faults
        plane = self

        class RequestHandler(Handler):
            def do_POST(self) -> None:
                plane.post(self)

            def do_GET(self) -> None:
                plane.connections(self, "GET")

            def do_DELETE(self) -> None:
                plane.connections(self, "DELETE")

        super().__init__(host, port, RequestHandler)

    def post(self, handler: Handler) -> None:
        match = _INVOKE.match(handler.path.split("?", 1)[0])
        if match:
            self.invoke(handler, unquote(match.group("name")))
        else:
            self.connections(handler, "POST")

    def invoke(self, handler: Handler, function: str) -> None:
        body = handler.body()
        pool = self.runtime.pool(function) if self.runtime else None
        if pool is None:
            _aws_error(handler, 404, "ResourceNotFoundException", f"Function not found: {function}")
            return
        try:
            event: Any = json.loads(body) if body else {}
        except ValueError:
            _aws_error(handler, 400, "InvalidRequestContentException", "Could not parse request body into json")
            return
        kind = handler.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            handler.reply(204, b"")
            return
        try:
            self.runtime.admit(function)
        except Throttled as e:
            _aws_error(handler, 429, "TooManyRequestsException", str(e))
            return
        except ServiceFailure as e:
            _aws_error(handler, 500, "ServiceException", str(e))
            return
        if kind == "Event":
            threading.Thread(target=self._invoke_async, args=(function, event), daemon=True).start()
            handler.reply(202, b"")
            return
        try:
            outcome = pool.invoke(event)
        except Throttled as e:
            _aws_error(handler, 429, "TooManyRequestsException", str(e))
            return
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if outcome.function_error:
            headers["X-Amz-Function-Error"] = outcome.function_error
        handler.reply(200, outcome.payload, headers)

    def _invoke_async(self, function: str, event: Any) -> None:
        # An asynchronous invocation's failure goes to the function's log only, as on Lambda.
        with contextlib.suppress(Exception):
            self.runtime.invoke(function, event)

    def connections(self, handler: Handler, method: str) -> None:
        match = _CONNECTIONS.match(handler.path)
        ws = self.websocket
        if not match or ws is None or match.group("api") != ws.spec.api_id or match.group("stage") != ws.spec.stage:
            _aws_error(handler, 404, "NotFoundException", f"no such resource: {method} {handler.path}")
            return
        connection_id = unquote(match.group("id"))
        if method == "POST":
            data = handler.body()
            if len(data) > MAX_POST_BYTES:
                _aws_error(handler, 413, "PayloadTooLargeException", "message over 128 KiB")
                return
            gone = ws.describe(connection_id) is not None and self.faults.strike("ws.gone")
            if not ws.post(connection_id, data, gone=gone):
                _aws_error(handler, 410, "GoneException", f"connection {connection_id} is gone")
                return
            handler.reply(200, b"")
        elif method == "GET":
            info = ws.describe(connection_id)
            if info is None:
                _aws_error(handler, 410, "GoneException", f"connection {connection_id} is gone")
                return
            handler.reply(200, info)
        else:
            if not ws.close(connection_id):
                _aws_error(handler, 410, "GoneException", f"connection {connection_id} is gone")
                return
            handler.reply(204, b"")
