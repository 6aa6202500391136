"""Settings read from the function's environment, which the SAM template sets.

Handlers never hard-code an endpoint, account or region: boto3 reads ``AWS_ENDPOINT_URL``
and ``AWS_REGION`` like every AWS SDK, so the same code runs on AWS and in the local cloud.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    job_events_table: str
    connections_table: str
    projects_table: str
    idempotency_table: str
    projects_bucket: str
    websocket_endpoint: str
    websocket_stage: str
    schemas_dir: str
    efs_mount_path: str
    token_secret_parameter: str

    @property
    def connections_url(self) -> str:
        """The ``@connections`` management endpoint of the WebSocket stage.

        ``WEBSOCKET_ENDPOINT`` is the API's ``ApiEndpoint`` attribute (``wss://{id}.execute-api…``);
        the management API is the same host over HTTPS, under the stage.
        """
        base = self.websocket_endpoint.rstrip("/")
        if base.startswith("wss://"):
            base = "https://" + base[len("wss://") :]
        elif base.startswith("ws://"):
            base = "http://" + base[len("ws://") :]
        return f"{base}/{self.websocket_stage}"


@cache
def settings() -> Settings:
    """The settings of this function, read once per warm container."""
    env = os.environ
    return Settings(
        jobs_table=env.get("JOBS_TABLE", ""),
        job_events_table=env.get("JOB_EVENTS_TABLE", ""),
        connections_table=env.get("CONNECTIONS_TABLE", ""),
        projects_table=env.get("PROJECTS_TABLE", ""),
        idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
        projects_bucket=env.get("PROJECTS_BUCKET", ""),
        websocket_endpoint=env.get("WEBSOCKET_ENDPOINT", ""),
        websocket_stage=env.get("WEBSOCKET_STAGE", ""),
        schemas_dir=env.get("SCHEMAS_DIR", "/opt"),
        efs_mount_path=env.get("EFS_MOUNT_PATH", "/mnt/efs"),
        token_secret_parameter=env.get("TOKEN_SECRET_PARAMETER", "/longrun/token-secret"),
    )


def git_private_hosts() -> frozenset[str]:
    """Hosts in private ranges that git jobs may reach anyway (``GitPrivateHosts``), lower case."""
    return frozenset(h.strip().lower() for h in os.environ.get("GIT_PRIVATE_HOSTS", "").split(",") if h.strip())


def upload_max_bytes() -> int:
    """The largest upload a pre-signed URL may carry (``UploadMaxBytes``; S3's own PUT limit is 5 GiB)."""
    return int(os.environ.get("UPLOAD_MAX_BYTES", str(5 * 1024**3)))


def upload_url_seconds() -> int:
    """How long a pre-signed upload URL stays valid."""
    return int(os.environ.get("UPLOAD_URL_SECONDS", "900"))


def download_url_seconds() -> int:
    """How long a pre-signed download URL stays valid (cut to its signing session's end, see core.presign)."""
    return int(os.environ.get("DOWNLOAD_URL_SECONDS", "900"))


def state_machine_arn(job_type: str) -> str | None:
    """The ARN of the state machine that runs ``job_type``, or ``None`` where no machine is wired in.

    The template names every job kind's machine ``<stack>-<type>`` and gives every function
    ``STATE_MACHINE_ARN_PREFIX`` (``arn:…:stateMachine:<stack>-``), so a new kind needs no variable
    of its own: the ARN is the prefix and the type. Which types exist is the schemas' business
    (:func:`core.schemas.job_types`, one ``schemas/jobs/<type>.json`` each); the callers ask only for those.
    """
    prefix = os.environ.get("STATE_MACHINE_ARN_PREFIX", "")
    return prefix + job_type if prefix else None
