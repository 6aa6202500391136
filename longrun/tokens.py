"""Development tokens for the local cloud, signed with ``LONGRUN_LOCAL_SECRET``.

A deployed stage's secret lives in SSM Parameter Store and never here: to call a deployed stage,
sign a token with that secret (or use your identity provider) and set ``LONGRUN_TOKEN``.

The development secret is defined here, not in the local cloud: ``longrun token`` and the client sign
with it without the ``local`` extra (moto) installed, and the local cloud imports it from here when it
puts the stack's signing secret into SSM, so both sides agree on one value.
"""

from __future__ import annotations

import os
import time

import jwt

DEFAULT_SECRET = "longrun-local-development-secret"


def local_secret() -> str:
    """The local cloud's signing secret: ``LONGRUN_LOCAL_SECRET``, or the development default."""
    return os.environ.get("LONGRUN_LOCAL_SECRET") or DEFAULT_SECRET


def make_token(user: str, ttl: int = 3600, secret: str | None = None) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": user, "iat": now, "nbf": now, "exp": now + ttl}, secret or local_secret(), algorithm="HS256"
    )
