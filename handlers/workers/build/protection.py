"""ECS task scale-in protection while a build runs.

The worker service scales on the build queue's depth; when it scales in, ECS would stop any task,
busy or not. A worker marks its task protected for the length of a build (the ECS agent's task
protection endpoint, ``$ECS_AGENT_URI/task-protection/v1/state``), so only idle workers are
stopped. Outside ECS (the local cloud, a laptop) there is no agent and nothing to protect.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request

from aws_lambda_powertools import Logger

logger = Logger(child=True)


def protect(enabled: bool, minutes: float = 60) -> bool:
    """Turn the task's scale-in protection on (for ``minutes``) or off; False outside ECS or on failure."""
    agent = os.environ.get("ECS_AGENT_URI")
    if not agent:
        return False
    body = {"ProtectionEnabled": enabled}
    if enabled:
        body["ExpiresInMinutes"] = max(1, min(2880, math.ceil(minutes)))
    request = urllib.request.Request(
        f"{agent}/task-protection/v1/state",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return 200 <= response.status < 300
    except OSError:
        logger.warning("could not change the task's scale-in protection", extra={"enabled": enabled})
        return False
