"""boto3 clients and resources, created once per warm container and reused across invocations."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import boto3
from botocore.config import Config

from core import scoped

# Lambda's own retries are the state machine's Retry; keep the SDK's short and bounded. Standard mode
# retries throttling (DynamoDB's ProvisionedThroughputExceededException included) with jittered
# backoff; five attempts make a throttled request fail only at a throttle rate's fifth power (a 10%
# rate: one request in 100,000), and what still fails is the step's TransientError for its Retry.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


@cache
def long_poll_client(service: str, wait_seconds: int) -> Any:
    """A client whose reads outlast a long poll (SQS ``WaitTimeSeconds``): the default read timeout is shorter."""
    return boto3.client(service, config=_CONFIG.merge(Config(read_timeout=wait_seconds + 10)))


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


@cache
def connections_client(endpoint_url: str) -> Any:
    """The WebSocket ``@connections`` client: its endpoint is per API and stage, so it is explicit."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_CONFIG)


@lru_cache(maxsize=256)
def project_client(project_id: str, service: str) -> Any:
    """A client acting for one project only (core.scoped): for the steps that touch its files and records."""
    return scoped.project_session(project_id).client(service, config=_CONFIG)


@lru_cache(maxsize=256)
def project_table(project_id: str, name: str) -> Any:
    """A table acting for one project only: its items are reachable, another project's are refused."""
    return scoped.project_session(project_id).resource("dynamodb", config=_CONFIG).Table(name)


@cache
def presigning_client(service: str) -> Any:
    """A client for pre-signed URLs: Signature Version 4, so the headers it is given are signed into the URL."""
    return boto3.client(service, config=_CONFIG.merge(Config(signature_version="s3v4")))
