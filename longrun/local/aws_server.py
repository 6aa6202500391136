"""The local cloud's AWS endpoint: moto in server mode, with Step Functions executing for real.

Runs in a process of its own: moto's engine runs executions in threads of this process, so it is
kept away from the API fronts and the Lambda workers. Two kinds of request are not moto's here:

* **Lambda invocations.** moto runs functions in Docker only, so ``POST
  /2015-03-31/functions/{name}/invocations`` goes to the local Lambda runtime; moto's engine,
  boto3 and the AWS CLI reach functions the way they would on AWS.
* **DynamoDB, when it has a process of its own** (``--dynamodb-url``): the job store's traffic
  is most of what a job costs, so ``longrun local up`` gives DynamoDB its own moto process (its
  own interpreter lock, the second core) and forwards DynamoDB requests made here to it. The
  functions reach it directly, through boto3's ``AWS_ENDPOINT_URL_DYNAMODB``.
* **Step Functions, when it has a process of its own** (``--stepfunctions-url``): moto runs every
  execution as threads of the process that answers ``StartExecution``, so with jobs in flight the
  engine's threads and the API calls took turns on one interpreter lock, and ``StartExecution``
  slowed with the load. ``longrun local up`` runs the engine in a third moto process and forwards
  Step Functions requests made here to it; the functions and build workers reach it directly
  (``AWS_ENDPOINT_URL_SFN``). That process is started with ``--integrations-url`` naming this
  one: its engine's service integrations (Lambda, SQS, DynamoDB) and its "Execution Status
  Change" events come here, where those services live.

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
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from longrun.local import patches, usage
from longrun.local.dynamodb.patches import dynamodb_request_lock, is_dynamodb_request
from longrun.local.faults import Faults, FaultSpecError, write_json
from longrun.local.faults import parse as parse_faults
from longrun.local.s3 import presigned
from longrun.local.stepfunctions.patches import EVENTS_ENDPOINT_ENV

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"})


class _Upstream:
    """Another local HTTP endpoint that answers a kind of AWS request for this one."""

    def __init__(self, url: str, name: str) -> None:
        target = urlsplit(url)
        self.host, self.port, self.name = target.hostname or "127.0.0.1", target.port or 80, name
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(self.host, self.port, timeout=960)
        return connection

    def forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in _HOP_BY_HOP
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("RAW_URI") or (
            environ["PATH_INFO"] + (("?" + environ["QUERY_STRING"]) if environ.get("QUERY_STRING") else "")
        )
        for attempt in (1, 2):  # a kept-alive connection the other side closed is retried once
            connection = self._connection()
            try:
                connection.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except OSError as e:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    start_response(
                        "502 Bad Gateway",
                        [
                            ("Content-Type", "application/json"),
                            ("x-amzn-ErrorType", "ServiceException"),
                            ("x-amzn-RequestId", str(uuid.uuid4())),
                        ],
                    )
                    message = f"the local {self.name} is unreachable: {e}"
                    return [json.dumps({"Type": "Service", "message": message}).encode()]
        start_response(
            f"{response.status} {response.reason}",
            [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP],
        )
        return [payload]


class LocalAwsApp:
    """WSGI app: moto, with Lambda invocations (and DynamoDB, if it has its own process) sent on.

    DynamoDB requests that moto answers here reach it one at a time, as atomic as DynamoDB makes
    them (see :mod:`longrun.local.dynamodb.patches`).
    """

    def __init__(
        self,
        moto_app: Callable[..., Iterable[bytes]],
        lambda_url: str,
        dynamodb_url: str | None,
        faults: Faults | None = None,
        keeper: Any = None,
        stepfunctions_url: str | None = None,
    ) -> None:
        # --state-dir: requests to the services this process saves pass the keeper's gate (longrun.local.state).
        self.keeper = keeper
        self.moto_app = keeper.wrap(moto_app) if keeper is not None else moto_app
        self.lambda_runtime = _Upstream(lambda_url, "Lambda runtime")
        self.dynamodb = _Upstream(dynamodb_url, "DynamoDB") if dynamodb_url else None
        self.stepfunctions = _Upstream(stepfunctions_url, "Step Functions") if stepfunctions_url else None
        self.faults = faults or Faults()
        # Requests answered here, as AWS meters them (longrun.local.usage; served at GET /_longrun/usage).
        self.usage = usage.Usage()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == usage.PATH and environ.get("REQUEST_METHOD") == "GET":
            return self._usage(environ, start_response)
        if self.keeper is not None and environ.get("PATH_INFO", "").startswith("/_longrun/state"):
            return self.keeper.serve(environ, start_response)
        refused = presigned.refusal(environ, start_response)
        if refused is not None:
            return refused
        if environ.get("REQUEST_METHOD") == "POST" and _INVOKE.match(environ.get("PATH_INFO", "")):
            return self.lambda_runtime.forward(environ, start_response)
        if self.stepfunctions is not None and _is_stepfunctions_request(environ):
            return self.stepfunctions.forward(environ, start_response)
        if is_dynamodb_request(environ):
            if self.dynamodb is not None:
                return self.dynamodb.forward(environ, start_response)
            if self.faults.strike("dynamodb.throttle"):
                return _throttled(environ, start_response)
            with dynamodb_request_lock():
                return list(self.usage.observe(environ, start_response, self.moto_app))
        return self.usage.observe(environ, start_response, self.moto_app)

    def _usage(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """This process's counts, with those of DynamoDB's own process (which answers DynamoDB) added in."""
        counts = self.usage.snapshot()
        for upstream in (self.dynamodb, self.stepfunctions):
            if upstream is None:
                continue
            captured: list[str] = []
            body = b"".join(upstream.forward(environ, lambda status, headers, seen=captured: seen.append(status)))
            if captured and captured[0].startswith("200"):
                other = json.loads(body)
                for key, n in other["calls"].items():
                    counts["calls"][key] = counts["calls"].get(key, 0) + n
                counts["dynamodb"].update(other["dynamodb"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(counts).encode()]


def _is_stepfunctions_request(environ: dict[str, Any]) -> bool:
    """A Step Functions API call: its JSON protocol names the operation ``AWSStepFunctions.<Operation>``."""
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("AWSStepFunctions.")


def _throttled(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """DynamoDB's answer to a request over the table's throughput (``--faults dynamodb.throttle``)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)  # the connection is kept alive: leave no body behind
    code = "ProvisionedThroughputExceededException"
    body = {
        "__type": f"com.amazonaws.dynamodb.v20120810#{code}",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API. (injected fault: dynamodb.throttle)",
    }
    # Every AWS answer names its request (x-amzn-RequestId): moto's engine builds a failed task's cause
    # from it, and without one its aws-sdk:dynamodb integration raised KeyError (States.Runtime).
    start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code),
                                       ("x-amzn-RequestId", str(uuid.uuid4()))])  # fmt: skip
    return [json.dumps(body).encode()]


def _report_faults(faults: Faults, path: str) -> None:
    """Armed by SIGUSR1 (once the cloud is up); the counts go to ``path`` every second and at exit."""
    signal.signal(signal.SIGUSR1, lambda *_: faults.arm())

    def run() -> None:
        while True:
            write_json(Path(path), faults.snapshot())
            time.sleep(1)

    threading.Thread(target=run, name="fault-counts", daemon=True).start()


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
    parser.add_argument("--lambda-url", required=True, help="where Lambda invocations go")
    parser.add_argument("--dynamodb-url", help="where DynamoDB requests go (else moto answers them here)")
    parser.add_argument("--faults", help="longrun.local.faults: this process injects dynamodb.throttle")
    parser.add_argument("--faults-seed", type=int, default=0)
    parser.add_argument("--faults-file", help="where this process writes its fault counts")
    parser.add_argument("--stepfunctions-url", help="where Step Functions requests go (else moto answers them here)")
    parser.add_argument("--integrations-url",
                        help="the AWS endpoint this process's Step Functions engine calls (its integrations, its "
                        "events); this process itself if not given")  # fmt: skip
    parser.add_argument("--state-dir", help="keep the owned services' state here (longrun.local.state)")
    parser.add_argument("--state-services", default="", help="the services this process saves: a,b")
    args = parser.parse_args(argv)
    try:
        faults = Faults(parse_faults(args.faults), args.faults_seed) if args.faults else Faults()
    except FaultSpecError as e:
        parser.error(str(e))

    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    patches.install()  # every patch of moto, each service's (longrun/local/<service>/patches.py)
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    keeper = None
    if args.state_dir:
        from longrun.local.state.keeper import Keeper

        keeper = Keeper(Path(args.state_dir), [s for s in args.state_services.split(",") if s])
        # `longrun local up` stops this process (SIGTERM) once nothing calls it: a terminal's Ctrl-C
        # reaching it first would make its final save before the last requests.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = LocalAwsApp(
        DomainDispatcherApplication(create_backend_app), args.lambda_url, args.dynamodb_url, faults, keeper,
        stepfunctions_url=args.stepfunctions_url,
    )  # fmt: skip
    if faults and args.faults_file:
        _report_faults(faults, args.faults_file)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    # moto's service integrations (Step Functions → Lambda, SQS, DynamoDB) call MOTO_PORT: this process,
    # or the one that serves those services when the engine has a process of its own.
    integrations = urlsplit(args.integrations_url).port if args.integrations_url else None
    os.environ["MOTO_PORT"] = str(integrations or server.server_port)
    if args.integrations_url:  # the engine's "Execution Status Change" events go to EventBridge there
        os.environ[EVENTS_ENDPOINT_ENV] = args.integrations_url
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _exit_with_parent()
    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if keeper is not None:
            keeper.final_save()
        server.server_close()
        if faults and args.faults_file:
            write_json(Path(args.faults_file), faults.snapshot())


if __name__ == "__main__":
    main()
