"""The local cloud's AWS endpoint: moto in server mode, with Step Functions executing for real.

Runs in a process of its own (moto's engine runs executions in threads of this process, so it is
kept away from the API fronts and the Lambda workers). One thing moto cannot do is run Lambda
functions without Docker, so the Lambda Invoke path is answered by the local Lambda runtime:
a WSGI layer in front of moto's app forwards ``POST /2015-03-31/functions/{name}/invocations``
to it, and moto's engine, boto3 and the AWS CLI all reach functions the way they would on AWS.

Started by ``longrun local up``; prints ``{"port": N}`` on stdout once it serves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from longrun.local import moto_fixes

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_FORWARDED_HEADERS = ("Content-Type", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Client-Context")


class LambdaInvokeRouter:
    """WSGI middleware: Lambda invocations go to the local Lambda runtime, the rest to moto.

    DynamoDB requests reach moto one at a time, as atomic as DynamoDB makes them (see moto_fixes).
    """

    def __init__(self, moto_app: Callable[..., Iterable[bytes]], lambda_url: str) -> None:
        self.moto_app = moto_app
        target = urlsplit(lambda_url)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and _INVOKE.match(environ.get("PATH_INFO", "")):
            return self._forward(environ, start_response)
        if moto_fixes.is_dynamodb_request(environ):
            with moto_fixes.dynamodb_request_lock():
                return list(self.moto_app(environ, start_response))
        return self.moto_app(environ, start_response)

    def _forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {}
        for name in _FORWARDED_HEADERS:
            value = environ.get("HTTP_" + name.upper().replace("-", "_")) or (
                environ.get("CONTENT_TYPE") if name == "Content-Type" else None
            )
            if value:
                headers[name] = value
        path = environ["PATH_INFO"] + (("?" + environ["QUERY_STRING"]) if environ.get("QUERY_STRING") else "")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=960)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            start_response(
                f"{response.status} {response.reason}",
                [(k, v) for k, v in response.getheaders() if k.lower() not in ("transfer-encoding", "connection")],
            )
            return [payload]
        except OSError as e:
            start_response(
                "502 Bad Gateway",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ServiceException")],
            )
            return [
                json.dumps({"Type": "Service", "message": f"the local Lambda runtime is unreachable: {e}"}).encode()
            ]
        finally:
            connection.close()


def _exit_with_parent() -> None:
    """If ``longrun local up`` dies without stopping us, do not linger as an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="longrun-local-aws")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lambda-url", required=True)
    args = parser.parse_args(argv)

    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_fixes.install()
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    app = LambdaInvokeRouter(DomainDispatcherApplication(create_backend_app), args.lambda_url)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    # moto's service integrations (Step Functions → Lambda, SQS, DynamoDB) call back on MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.server_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _exit_with_parent()
    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
