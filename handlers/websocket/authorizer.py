"""The WebSocket API's REQUEST authorizer on ``$connect``: the token comes as ``?token=``.

Browsers cannot set headers on a WebSocket handshake, hence the query string.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import append_job_keys, logger, tracer
from core.tokens import InvalidToken, user_of


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        user_id = user_of(token)
    except InvalidToken as e:
        logger.info("token refused", extra={"reason": str(e)})
        raise Exception("Unauthorized") from None
    append_job_keys(userId=user_id)
    return {
        "principalId": user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}],
        },
        "context": {"userId": user_id},
    }
