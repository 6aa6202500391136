"""``$disconnect``: forget the connection and its subscriptions (TTL catches a missed one)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import connections
from core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    connections.forget(event["requestContext"]["connectionId"])
    return {"statusCode": 200}
