"""Fixtures of the unit tests: the stack of ``infra/template.yaml`` created in moto, in process.

The tables, bucket and state machine come from the template through the local cloud's own
``StackBuilder``, so the tests use the template's key schemas and indexes, and every function's
environment is the one the template gives it.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
USER = "alice"
OTHER = "bob"
SECRET = "unit-secret"
WS_BASE = "https://abc.execute-api.us-east-1.amazonaws.com"

POWERTOOLS_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "longrun",
    "POWERTOOLS_SERVICE_NAME": "longrun",
}
# Lambda sets a function's environment before its module is imported, and Powertools' Logger,
# Tracer and Metrics read it at import: the handler modules are imported while collecting.
for _name, _value in POWERTOOLS_ENV.items():
    os.environ.setdefault(_name, _value)


@dataclass
class FakeContext:
    """The part of Lambda's context object that the handlers and Powertools read."""

    function_name: str = "unit-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:unit-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/unit-function"
    log_stream_name: str = "unit"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Aws:
    """The stack as the tests see it."""

    stack: Any
    env: dict[str, str]  # every function's environment, merged (they only add to the Globals)
    efs: Path
    functions: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def table(self, env_name: str) -> Any:
        return boto3.resource("dynamodb", region_name=REGION).Table(self.env[env_name])

    @property
    def bucket(self) -> str:
        return self.env["PROJECTS_BUCKET"]

    @property
    def state_machine(self) -> str:
        return self.env["STATE_MACHINE_ARN_PREFIX"] + "create-project"

    def put_job(self, job_id: str, user: str = USER, **fields: Any) -> dict[str, Any]:
        """A job item as ``POST /jobs`` writes it."""
        item: dict[str, Any] = {
            "jobId": job_id,
            "userId": user,
            "type": "create-project",
            "status": "RUNNING",
            "params": {"name": "demo", "template": "web-app"},
            "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-01-01T00:00:00.000Z",
            "executionArn": self.state_machine.replace(":stateMachine:", ":execution:")
            + f":create-project-demo-{job_id[:8]}",
            "seq": 0,
            "steps": {},
            "projectId": f"prj-{job_id}",
        }
        item.update(fields)
        self.table("JOBS_TABLE").put_item(Item={k: v for k, v in item.items() if v is not None})
        return item

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Every stored event of a job, in ``seq`` order."""
        items = self.table("JOB_EVENTS_TABLE").query(
            KeyConditionExpression="jobId = :j", ExpressionAttributeValues={":j": job_id}, ConsistentRead=True
        )["Items"]
        return [json.loads(i["body"]) for i in items]

    def pushed(self, connection_id: str) -> list[dict[str, Any]]:
        """What moto's ``@connections`` API received for one connection, message by message."""
        from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

        connections = apigatewaymanagementapi_backends[ACCOUNT][REGION].connections
        if connection_id not in connections:
            return []
        text = connections[connection_id].data.decode()
        decoder, out, at = json.JSONDecoder(), [], 0
        while at < len(text):
            message, at = decoder.raw_decode(text, at)
            out.append(message)
        return out


# IAM roles and log groups are a third of a build's time in moto, and no handler reads them (IAM is
# not enforced in process; tests/infra checks the policies), nor the alarms, dashboard and alarm
# topic (test_local_policy_and_intrinsics creates those for real). Everything else is created for real.
NOT_READ_BY_HANDLERS = frozenset({"iam", "logs", "cloudwatch", "sns"})


class _Discard:
    """A client whose every call succeeds and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: {}


def clear_caches() -> None:
    from aws_lambda_powertools.utilities import parameters

    from core import aws, config, presign, schemas, scoped

    config.settings.cache_clear()
    aws.client.cache_clear()
    aws.table.cache_clear()
    aws.project_client.cache_clear()
    aws.project_table.cache_clear()
    scoped.forget()
    presign._signer.cache_clear()
    aws.connections_client.cache_clear()
    schemas.load.cache_clear()
    schemas._validator.cache_clear()
    parameters.clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, translated: Any, boto_session: boto3.Session) -> Iterator[Aws]:
    from longrun.local.cloudformation.engine import StackBuilder

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        **POWERTOOLS_ENV,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clear_caches()
    with mock_aws():
        # mock_aws blanks boto3's default session; a shared one keeps the models loaded (speed only).
        boto3.DEFAULT_SESSION = boto_session
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service in NOT_READ_BY_HANDLERS:
                return _Discard()
            if service not in clients:
                clients[service] = boto_session.client(service, region_name=REGION)
            return clients[service]

        stack = StackBuilder(
            copy.deepcopy(translated),
            stack_name="unit",
            region=REGION,
            parameters={"StageName": "test", "VpcId": "vpc-1", "SubnetIds": "subnet-a,subnet-b"},
            data_dir=tmp_path,
            websocket_management_base=WS_BASE,
            aws=client,
        ).build()
        env: dict[str, str] = {}
        for function in stack.functions:
            for name, value in function.environment.items():
                # EFS_MOUNT_PATH is the mounted directory only where a function mounts EFS.
                if name == "EFS_MOUNT_PATH" and name in env and value == "/mnt/efs":
                    continue
                env[name] = value
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client("ssm").put_parameter(Name=env["TOKEN_SECRET_PARAMETER"], Value=SECRET, Type="SecureString")
        assert stack.efs_root is not None
        yield Aws(
            stack=stack, env=env, efs=Path(env["EFS_MOUNT_PATH"]), functions={f.logical_id: f for f in stack.functions}
        )
    clear_caches()


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's in-process DynamoDB is not thread-safe: concurrent requests corrupt its state
    ("dictionary changed size during iteration", a job counter moved without its event row).
    DynamoDB applies each request atomically; a lock around moto's request processing does the same.
    """
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)
