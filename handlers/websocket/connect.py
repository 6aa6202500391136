"""``$connect``: the authorizer has already checked the token; remember who this connection is."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import connections
from core.observability import append_job_keys, logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event["requestContext"]
    authorizer = request.get("authorizer") or {}
    user_id = authorizer.get("userId") or authorizer.get("principalId")
    if not user_id:
        return {"statusCode": 401, "body": "Unauthorized"}
    append_job_keys(userId=user_id)
    connections.save_connection(request["connectionId"], user_id)
    logger.info("connected", extra={"connectionId": request["connectionId"]})
    return {"statusCode": 200}
