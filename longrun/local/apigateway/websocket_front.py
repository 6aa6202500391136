"""API Gateway (WebSocket) for the local cloud, on the ``websockets`` library.

As on AWS: the ``$connect`` route's REQUEST authorizer sees ``?token=`` before the handshake
completes and a refusal ends it with 401/403; ``$connect``'s integration may refuse too; each
message is routed by the API's route selection expression (``$request.body.action``) to its route
or ``$default``; ``$disconnect`` runs when either side closes. Handlers answer through the
``@connections`` API (see :mod:`longrun.local.control_plane`), which finds connections here.
Message size is capped at API Gateway's 128 KiB.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from longrun.local.apigateway.resources import WebSocketApiSpec
from longrun.local.apigateway.throttle import TokenBucket
from longrun.local.awslambda.runtime import LambdaRuntime, ServiceFailure, Throttled
from longrun.local.cloudformation.engine import ACCOUNT_ID

log = logging.getLogger("longrun.local.websocket")

MAX_MESSAGE_BYTES = 128 * 1024


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Connection:
    def __init__(
        self, connection_id: str, socket: ServerConnection, authorizer: dict[str, Any], source_ip: str, agent: str
    ):
        self.id = connection_id
        self.socket = socket
        self.authorizer = authorizer
        self.source_ip = source_ip
        self.user_agent = agent
        self.connected_at = _now_iso()
        self.connected_ms = int(time.time() * 1000)
        self.last_active_at = self.connected_at


class WebSocketFront:
    def __init__(self, host: str, port: int, spec: WebSocketApiSpec, runtime: LambdaRuntime, region: str) -> None:
        self.spec = spec
        self.runtime = runtime
        self.region = region
        self.bucket = TokenBucket(spec.throttle_rate, spec.throttle_burst)
        self._connections: dict[str, _Connection] = {}
        self._lock = threading.Lock()
        self.server: Server = serve(
            self._session,
            host,
            port,
            process_request=self._handshake,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
        )
        self.port = self.server.socket.getsockname()[1]
        self.url = f"ws://{host}:{self.port}/{spec.stage}"

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="websocket-front", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.socket.close(1001, "going away")
        self.server.shutdown()

    # --- the @connections API -----------------------------------------------------------------

    def post(self, connection_id: str, data: bytes, gone: bool = False) -> bool:
        """Send ``data``; False if the connection is gone (``410``).

        ``gone``: the connection goes away now, as a client's network drops under API Gateway
        (``--faults ws.gone``): it is closed with 1001 and the post finds it gone.
        """
        with self._lock:
            connection = self._connections.pop(connection_id, None) if gone else self._connections.get(connection_id)
        if connection is not None and gone:
            threading.Thread(target=connection.socket.close, args=(1001, "going away"), daemon=True).start()
            return False
        if connection is None:
            return False
        try:
            connection.socket.send(data.decode("utf-8", errors="replace"))
            return True
        except Exception:  # closed under us: gone
            return False

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None:
            return None
        return {
            "ConnectedAt": connection.connected_at,
            "Identity": {"SourceIp": connection.source_ip, "UserAgent": connection.user_agent},
            "LastActiveAt": connection.last_active_at,
        }

    def close(self, connection_id: str) -> bool:
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None:
            return False
        connection.socket.close(1000, "closed by the server")
        return True

    # --- events -------------------------------------------------------------------------------

    def _context(
        self,
        connection_id: str,
        route: str,
        event_type: str,
        authorizer: dict[str, Any] | None,
        source_ip: str,
        connected_ms: int,
    ) -> dict[str, Any]:
        return {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "messageId": base64.b64encode(os.urandom(9)).decode() if event_type == "MESSAGE" else None,
            "extendedRequestId": base64.b64encode(os.urandom(9)).decode(),
            "requestId": base64.b64encode(os.urandom(9)).decode(),
            "apiId": self.spec.api_id,
            "stage": self.spec.stage,
            "domainName": urlsplit(self.url).netloc,
            "connectedAt": connected_ms,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
            "authorizer": authorizer,
        }

    def _refuse(self, connection: ServerConnection, status: int, message: str) -> Response:
        response = connection.respond(status, json.dumps({"message": message}) + "\n")
        response.headers["Content-Type"] = "application/json"
        return response

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """``$connect``: the authorizer, then the route's integration, before the upgrade."""
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {k: v for k, v in request.headers.raw_items()}
        source_ip = connection.remote_address[0] if connection.remote_address else "127.0.0.1"
        connection_id = base64.b64encode(os.urandom(12)).decode().replace("/", "_").replace("+", "-")
        connected_ms = int(time.time() * 1000)
        if not self.bucket.take():
            return self._refuse(connection, 429, "Too Many Requests")
        authorizer: dict[str, Any] | None = None
        if self.spec.connect_authorizer:
            if not query.get("token"):
                return self._refuse(connection, 401, "Unauthorized")
            method_arn = f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.spec.api_id}/{self.spec.stage}/$connect"
            event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "headers": headers,
                "queryStringParameters": query,
                "requestContext": self._context(connection_id, "$connect", "CONNECT", None, source_ip, connected_ms),
            }
            try:
                outcome = self.runtime.invoke(self.spec.connect_authorizer, event)
            except (Throttled, ServiceFailure):
                return self._refuse(connection, 500, "Authorizer throttled")
            payload = json.loads(outcome.payload or b"null")
            if outcome.function_error:
                unauthorized = isinstance(payload, dict) and payload.get("errorMessage") == "Unauthorized"
                return self._refuse(
                    connection, 401 if unauthorized else 500, "Unauthorized" if unauthorized else "Authorizer error"
                )
            statements = (payload or {}).get("policyDocument", {}).get("Statement", [])
            if not any(s.get("Effect") == "Allow" for s in statements) or any(
                s.get("Effect") == "Deny" for s in statements
            ):
                return self._refuse(connection, 403, "Forbidden")
            authorizer = {"principalId": payload.get("principalId"), **(payload.get("context") or {})}
        if "$connect" in self.spec.routes:
            event = {
                "headers": headers,
                "multiValueHeaders": {k: [v] for k, v in headers.items()},
                "queryStringParameters": query or None,
                "requestContext": self._context(
                    connection_id, "$connect", "CONNECT", authorizer, source_ip, connected_ms
                ),
                "isBase64Encoded": False,
            }
            try:
                outcome = self.runtime.invoke(self.spec.routes["$connect"], event)
            except (Throttled, ServiceFailure):  # the integration failed: API Gateway refuses the upgrade
                return self._refuse(connection, 500, "Internal server error")
            status = _status_of(outcome)
            if status >= 300:
                return self._refuse(connection, status if status < 600 else 500, "Forbidden")
        connection.longrun = _Connection(  # type: ignore[attr-defined]
            connection_id, connection, authorizer or {}, source_ip, headers.get("User-Agent", "")
        )
        connection.longrun.connected_ms = connected_ms  # type: ignore[attr-defined]
        return None

    def _route(self, text: str) -> str:
        """``$request.body.action``: a JSON body's field names the route; anything else is ``$default``."""
        field = self.spec.route_selection.removeprefix("$request.body.")
        try:
            body = json.loads(text)
        except ValueError:
            return "$default"
        route = body.get(field) if isinstance(body, dict) else None
        if isinstance(route, str) and route in self.spec.routes and not route.startswith("$"):
            return route
        return "$default"

    def _session(self, socket: ServerConnection) -> None:
        connection: _Connection = socket.longrun  # type: ignore[attr-defined]
        with self._lock:
            self._connections[connection.id] = connection
        try:
            for message in socket:
                text = message if isinstance(message, str) else message.decode("utf-8", errors="replace")
                connection.last_active_at = _now_iso()
                route = self._route(text)
                if route not in self.spec.routes:
                    socket.send(json.dumps({"message": "Forbidden", "connectionId": connection.id}))
                    continue
                event = {
                    "requestContext": self._context(
                        connection.id,
                        route,
                        "MESSAGE",
                        connection.authorizer,
                        connection.source_ip,
                        connection.connected_ms,
                    ),
                    "body": text,
                    "isBase64Encoded": False,
                }
                try:
                    outcome = self.runtime.invoke(self.spec.routes[route], event)
                    if outcome.function_error:
                        log.warning("%s failed: %s", route, outcome.payload[:2000])
                        socket.send(json.dumps({"message": "Internal server error", "connectionId": connection.id}))
                except Throttled:
                    socket.send(json.dumps({"message": "Too Many Requests", "connectionId": connection.id}))
                except ServiceFailure:
                    socket.send(json.dumps({"message": "Internal server error", "connectionId": connection.id}))
        except Exception as e:  # the client went away mid-message
            log.debug("connection %s ended: %s", connection.id, e)
        finally:
            with self._lock:
                self._connections.pop(connection.id, None)
            if "$disconnect" in self.spec.routes:
                event = {
                    "headers": {},
                    "requestContext": self._context(
                        connection.id,
                        "$disconnect",
                        "DISCONNECT",
                        connection.authorizer,
                        connection.source_ip,
                        connection.connected_ms,
                    ),
                    "isBase64Encoded": False,
                }
                try:
                    self.runtime.invoke(self.spec.routes["$disconnect"], event)
                except (Throttled, ServiceFailure) as e:  # not retried, as on AWS: the TTL cleans up
                    log.warning("$disconnect failed: %s", e)
                except Exception:
                    log.exception("$disconnect failed")


def _status_of(outcome: Any) -> int:
    if outcome.function_error:
        return 500
    try:
        payload = json.loads(outcome.payload or b"null")
        return int((payload or {}).get("statusCode", 200))
    except (ValueError, TypeError, AttributeError):
        return 200
