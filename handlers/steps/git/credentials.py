"""Stored git credentials for the git steps, handed to git through ``GIT_ASKPASS``.

A user stores them once as an SSM SecureString at ``/longrun/git-credentials/<userId>/<name>``
(``{"username", "password"}``, or a bare token) and names them in a job. The secret reaches git
only through the environment of the git process: never a file, a URL, an argument or a log line.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_lambda_powertools.utilities import parameters

from steps.git.errors import CredentialsNotFound

CREDENTIALS_PATH = "/longrun/git-credentials"


def askpass_for(user_id: str, name: str, into: Path) -> tuple[Path, dict[str, str]]:
    """A GIT_ASKPASS program that answers from its environment: the secret is never in a file or argument."""
    try:
        secret = parameters.get_parameter(f"{CREDENTIALS_PATH}/{user_id}/{name}", decrypt=True, max_age=60)
    except parameters.exceptions.GetParameterError:
        raise CredentialsNotFound(f"no stored credentials named {name!r}") from None
    try:
        stored = json.loads(secret)
        username, password = str(stored["username"]), str(stored["password"])
    except (ValueError, KeyError, TypeError):
        username, password = "x-access-token", secret  # a bare token
    script = into / "askpass"
    script.write_text('#!/bin/sh\ncase "$1" in Username*) printf "%s\\n" "$LONGRUN_GIT_USERNAME";; '
                      '*) printf "%s\\n" "$LONGRUN_GIT_PASSWORD";; esac\n')  # fmt: skip
    script.chmod(0o700)
    return script, {"LONGRUN_GIT_USERNAME": username, "LONGRUN_GIT_PASSWORD": password}
