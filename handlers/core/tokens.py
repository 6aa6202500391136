"""Bearer tokens: HS256 JWTs whose ``sub`` is the user.

The secret is an SSM SecureString read with Powertools Parameters (cached five minutes per warm
container), never a constant in code.
"""

from __future__ import annotations

import re

import jwt
from aws_lambda_powertools.utilities import parameters

from core.config import settings

MAX_TOKEN_LENGTH = 4096
# The user id ends up inside DynamoDB keys such as ``name#<user>#<project>``: keep it plain.
USER_ID = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


class InvalidToken(Exception):
    pass


def _secret() -> str:
    return parameters.get_parameter(settings().token_secret_parameter, decrypt=True, max_age=300)


def user_of(token: str | None) -> str:
    """The user a token speaks for, or ``InvalidToken`` with a reason safe to log."""
    if not token:
        raise InvalidToken("no token")
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too long")
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=["HS256"],
            options={"require": ["sub", "exp"]},
            leeway=0,
        )
    except jwt.PyJWTError as e:
        raise InvalidToken(str(e)) from e
    sub = claims.get("sub")
    if not isinstance(sub, str) or not USER_ID.match(sub):
        raise InvalidToken("sub is not a valid user id")
    return sub
