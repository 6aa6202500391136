"""``longrun local up --faults``: the spec, the seeded draws, and each fault as AWS would answer it.

Each wire test talks to the part of the local cloud that emulates the service, with the client a
handler uses (boto3, a WebSocket client), and checks what that client sees: the status code and
error code AWS documents for that failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from longrun.local.apigateway.resources import WebSocketApiSpec
from longrun.local.apigateway.websocket_front import WebSocketFront
from longrun.local.aws_server import LocalAwsApp
from longrun.local.awslambda.runtime import LambdaRuntime, Outcome
from longrun.local.control_plane import ControlPlane
from longrun.local.ecs.resources import ServiceSpec
from longrun.local.ecs.services import ServicePool
from longrun.local.faults import NAMES, Faults, FaultSpecError, Reporter, merge, parse, read_counts, to_spec

REPO = Path(__file__).resolve().parents[2]
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def _client(service: str, endpoint: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def armed(rates: dict[str, float], seed: int = 0) -> Faults:
    faults = Faults(rates, seed)
    faults.arm()
    return faults


# --- the spec ---------------------------------------------------------------------------------


def test_the_spec_names_each_fault_with_its_rate():
    spec = "lambda.throttle=0.1,lambda.error=0.05, ws.gone=0.1,dynamodb.throttle=0.05,worker.kill=0.02"
    assert parse(spec) == {
        "lambda.throttle": 0.1,
        "lambda.error": 0.05,
        "ws.gone": 0.1,
        "dynamodb.throttle": 0.05,
        "worker.kill": 0.02,
    }
    assert parse("worker.kill=1,ws.gone=0") == {"worker.kill": 1.0, "ws.gone": 0.0}
    assert parse(to_spec(parse(spec))) == parse(spec)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("lambda.trottle=0.1", "unknown fault 'lambda.trottle'"),
        ("lambda.throttle", "expected name=rate"),
        ("lambda.throttle=lots", "not a number"),
        ("lambda.throttle=1.5", "outside [0, 1]"),
        ("lambda.throttle=-0.1", "outside [0, 1]"),
        ("lambda.throttle=nan", "outside [0, 1]"),
        ("ws.gone=0.1,ws.gone=0.2", "given twice"),
        ("", "no faults given"),
    ],
)
def test_anything_else_is_refused_with_what_is_wrong(spec, says):
    with pytest.raises(FaultSpecError, match=None) as refused:
        parse(spec)
    assert says in str(refused.value)


def test_local_up_refuses_a_bad_spec_as_a_usage_error_before_starting_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--data-dir", str(tmp_path),
         "--faults", "dynamo.slow=0.1"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "usage:" in result.stderr and "unknown fault 'dynamo.slow'" in result.stderr
    assert not (tmp_path / "endpoints.json").exists()


# --- the draws --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.5])
def test_each_fault_strikes_at_its_rate(rate):
    faults = armed(dict.fromkeys(NAMES, rate), seed=3)
    draws = 20_000
    for name in NAMES:
        hits = sum(faults.strike(name) for _ in range(draws))
        spread = 4 * (rate * (1 - rate) / draws) ** 0.5  # four standard deviations
        assert abs(hits / draws - rate) < spread, (name, hits)
        assert faults.snapshot()["injected"][name] == hits
        assert faults.snapshot()["draws"][name] == draws


def test_the_same_seed_strikes_the_same_occasions_and_another_seed_others():
    def pattern(seed: int, name: str) -> list[bool]:
        faults = armed({name: 0.3}, seed)
        return [faults.strike(name) for _ in range(200)]

    assert pattern(7, "lambda.error") == pattern(7, "lambda.error")
    assert pattern(7, "lambda.error") != pattern(8, "lambda.error")
    # Each fault has its own stream: one fault's traffic does not move another's draws.
    assert pattern(7, "lambda.error") != pattern(7, "ws.gone")


def test_nothing_strikes_before_the_cloud_arms_its_faults_nor_at_rate_zero():
    faults = Faults({"lambda.throttle": 1.0, "ws.gone": 0.0})
    assert not any(faults.strike("lambda.throttle") for _ in range(100))
    faults.arm()
    assert faults.strike("lambda.throttle")
    assert not faults.strike("ws.gone") and not faults.strike("dynamodb.throttle")
    assert not Faults()


def test_counts_of_several_processes_add_up_in_faults_json(tmp_path):
    here = armed({"lambda.throttle": 1.0})
    for _ in range(3):
        here.strike("lambda.throttle")
    part = tmp_path / "part.json"
    other = armed({"dynamodb.throttle": 1.0})
    other.strike("dynamodb.throttle")
    part.write_text(json.dumps(other.snapshot()))
    reporter = Reporter(here, tmp_path / "faults.json", [part, tmp_path / "missing.json"], interval=0.05)
    reporter.start()
    reporter.stop()
    counts = read_counts(tmp_path)
    assert counts["injected"] == {"lambda.throttle": 3, "dynamodb.throttle": 1}
    assert counts["rates"] == {"lambda.throttle": 1.0, "dynamodb.throttle": 1.0}
    assert merge()["injected"] == {}


# --- Lambda: 429 TooManyRequestsException and 500 ServiceException ------------------------------


class _Pool:
    """A function that answers at once: what is tested is the service in front of it."""

    def __init__(self) -> None:
        self.ran = 0

    def invoke(self, event: Any) -> Outcome:
        self.ran += 1
        return Outcome(json.dumps({"echo": event}).encode())


@pytest.fixture
def lambda_endpoint():
    def start(rates: dict[str, float]) -> tuple[str, _Pool]:
        runtime = LambdaRuntime({}, Path("/tmp"), armed(rates))
        pool = _Pool()
        runtime._pools["fn"] = pool  # type: ignore[assignment]
        plane = ControlPlane("127.0.0.1", 0, runtime)
        plane.faults = runtime.faults
        plane.start()
        started.append(plane)
        return plane.url, pool

    started: list[ControlPlane] = []
    yield start
    for plane in started:
        plane.stop()


def test_a_throttled_invoke_is_lambdas_429_and_the_function_never_runs(lambda_endpoint):
    url, pool = lambda_endpoint({"lambda.throttle": 1.0})
    with pytest.raises(ClientError) as refused:
        _client("lambda", url).invoke(FunctionName="fn", Payload=b"{}")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["RequestId"]  # Step Functions quotes it in the cause
    assert pool.ran == 0


def test_a_failed_invoke_is_lambdas_500_service_exception_not_a_function_error(lambda_endpoint):
    url, pool = lambda_endpoint({"lambda.error": 1.0})
    with pytest.raises(ClientError) as refused:
        _client("lambda", url).invoke(FunctionName="fn", Payload=b"{}", InvocationType="Event")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert refused.value.response["Error"]["Code"] == "ServiceException"
    assert pool.ran == 0


class _Sqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:123456789012:q"}}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]


def test_an_event_source_mapping_invokes_a_refused_batch_again_and_then_deletes_it():
    from longrun.local.awslambda.event_sources import SqsPoller
    from longrun.local.awslambda.resources import EventSourceSpec

    runtime = LambdaRuntime({}, Path("/tmp"), armed({"lambda.throttle": 1.0}))
    pool = _Pool()
    runtime._pools["fn"] = pool  # type: ignore[assignment]
    sqs = _Sqs()
    poller = SqsPoller(EventSourceSpec("http://q", "fn"), sqs, runtime, "us-east-1")
    threading.Timer(0.5, lambda: runtime.faults.rates.pop("lambda.throttle")).start()  # the throttling passes
    poller._deliver([{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}])
    assert pool.ran == 1 and sqs.deleted == ["r1"]
    assert runtime.faults.snapshot()["injected"]["lambda.throttle"] >= 2


# --- DynamoDB: 400 ProvisionedThroughputExceededException ---------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dynamodb_endpoint():
    def start(rates: dict[str, float]) -> tuple[str, list[str]]:
        seen: list[str] = []

        def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(length)
            seen.append(environ.get("HTTP_X_AMZ_TARGET", ""))
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
            return [b'{"TableNames": []}']

        app = LocalAwsApp(moto, "http://127.0.0.1:9", None, armed(rates))
        server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", seen

    servers: list[Any] = []
    yield start
    for server in servers:
        server.shutdown()


def test_a_throttled_dynamodb_request_is_refused_before_moto_sees_it(dynamodb_endpoint):
    url, seen = dynamodb_endpoint({"dynamodb.throttle": 1.0})
    with pytest.raises(ClientError) as refused:
        _client("dynamodb", url).list_tables()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    # As every AWS answer, it names its request: moto's engine reads the id into a failed task's cause,
    # and without one a throttled aws-sdk:dynamodb task ended States.Runtime (KeyError) instead of being retried.
    assert refused.value.response["ResponseMetadata"]["RequestId"]
    assert seen == []


def test_the_handlers_sdk_settings_retry_dynamodb_throttling(dynamodb_endpoint):
    from handlers.core import aws as handler_aws

    url, seen = dynamodb_endpoint({"dynamodb.throttle": 0.4})
    dynamodb = _client("dynamodb", url, handler_aws._CONFIG)
    for _ in range(5):
        assert dynamodb.list_tables()["TableNames"] == []
    assert len(seen) == 5


# --- WebSocket: 410 GoneException, and the connection goes away ---------------------------------


@pytest.fixture
def websocket_front():
    spec = WebSocketApiSpec(api_id="api1", stage="local", route_selection="$request.body.action", routes={},
                            connect_authorizer=None)  # fmt: skip
    front = WebSocketFront("127.0.0.1", 0, spec, LambdaRuntime({}, Path("/tmp")), "us-east-1")
    front.start()
    plane = ControlPlane("127.0.0.1", 0, LambdaRuntime({}, Path("/tmp")))
    plane.websocket = front
    plane.start()
    yield front, plane
    plane.stop()
    front.stop()


def _connection_id(front: WebSocketFront) -> str:
    deadline = time.monotonic() + 5
    while not front._connections:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return next(iter(front._connections))


def test_a_gone_connection_answers_410_and_the_client_sees_it_go_away(websocket_front):
    front, plane = websocket_front
    management = _client("apigatewaymanagementapi", f"{plane.url}/@ws/api1/local")
    with connect(front.url) as ws:
        connection_id = _connection_id(front)
        management.post_to_connection(ConnectionId=connection_id, Data=b'{"n": 1}')
        assert json.loads(ws.recv(timeout=5)) == {"n": 1}
        plane.faults = armed({"ws.gone": 1.0})
        with pytest.raises(ClientError) as gone:
            management.post_to_connection(ConnectionId=connection_id, Data=b'{"n": 2}')
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
        assert gone.value.response["Error"]["Code"] == "GoneException"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    plane.faults = Faults()
    with pytest.raises(ClientError) as still_gone:  # gone for good, as on AWS
        management.get_connection(ConnectionId=connection_id)
    assert still_gone.value.response["Error"]["Code"] == "GoneException"


# --- ECS: a build worker killed mid-build, and replaced -----------------------------------------


def test_a_worker_running_a_build_is_killed_and_replaced_and_an_idle_one_is_not(tmp_path):
    busy = "import subprocess; subprocess.run(['sleep', '60'])"  # a worker with a build: a child in its session
    faults = armed({"worker.kill": 1.0})
    pools = [
        ServicePool(ServiceSpec("W", name, [sys.executable, "-c", code], {}), 1, {}, tmp_path, tmp_path, faults)
        for name, code in (("busy", busy), ("idle", "import time; time.sleep(60)"))
    ]
    for pool in pools:
        pool.start()
    try:
        first = pools[0].tasks[0]
        assert first is not None
        deadline = time.monotonic() + 10
        while pools[0].replaced == 0:
            assert time.monotonic() < deadline, "the busy worker was never killed"
            time.sleep(0.1)
        assert first.returncode == -9  # SIGKILL, as ECS stops a task that is lost
        assert pools[0].tasks[0] is not first and pools[0].pids()
        assert pools[1].replaced == 0
        assert faults.snapshot()["injected"]["worker.kill"] >= 1
    finally:
        for pool in pools:
            pool.stop(timeout=2)
