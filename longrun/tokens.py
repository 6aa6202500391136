"""Development tokens for the local cloud, signed with ``LONGRUN_LOCAL_SECRET``.

A deployed stage's secret lives in SSM Parameter Store and never here: to call a deployed stage,
sign a token with that secret (or use your identity provider) and set ``LONGRUN_TOKEN``.
"""

from __future__ import annotations

import time

import jwt

from longrun.local.cloud import local_secret


def make_token(user: str, ttl: int = 3600, secret: str | None = None) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": user, "iat": now, "nbf": now, "exp": now + ttl}, secret or local_secret(), algorithm="HS256"
    )
