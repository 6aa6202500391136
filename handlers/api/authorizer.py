"""The REST API's TOKEN authorizer: a valid bearer token allows the caller into the whole stage.

The policy covers every method of the stage (``…/{stage}/*/*``) so that API Gateway can cache it
per token (``ReauthorizeEvery``) and reuse it across routes; which jobs a user may see is decided
by the API function from ``principalId``, never by the policy.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.observability import append_job_keys, logger, tracer
from core.tokens import InvalidToken, user_of


def stage_wildcard(method_arn: str) -> str:
    """``arn:…:{apiId}/{stage}/{METHOD}/{path}`` → ``arn:…:{apiId}/{stage}/*/*``."""
    prefix, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    return f"{prefix}:execute-api:{parts[0]}/{parts[1]}/*/*" if len(parts) >= 2 else method_arn


def allow(user_id: str, resource: str) -> dict[str, Any]:
    return {
        "principalId": user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}],
        },
        "context": {"userId": user_id},
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        user_id = user_of(event.get("authorizationToken"))
    except InvalidToken as e:
        logger.info("token refused", extra={"reason": str(e)})
        # API Gateway answers 401 for exactly this message.
        raise Exception("Unauthorized") from None
    append_job_keys(userId=user_id)
    return allow(user_id, stage_wildcard(event["methodArn"]))
