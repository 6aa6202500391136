"""Pre-signed S3 URLs for one project's objects, whose ``expiresAt`` is the truth.

A URL signed with temporary credentials stops working when those credentials expire, whatever
``X-Amz-Expires`` says: "If you created a presigned URL using a temporary token, then the URL
expires when the token expires, even if the URL was created with a later expiration time."
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html, and "Expiration
time for presigned URLs" in https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html:
IAM role credentials - the URL expires when the role session expires.)

A Lambda function's own credentials come from its environment without an expiry the code can
read, so a URL signed with them may die at any moment before the ``expiresAt`` it was given
with. URLs are therefore signed with the project's session (core.scoped): its expiry is known,
it is renewed when it has less left than the URL needs, and the URL (its ``X-Amz-Expires`` and the
``expiresAt`` reported with it) never outlives it. The session policy limits the URL to the
project's own objects as well. Uploads use it; downloads can (any S3 operation and parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from core import scoped

# A URL handed out is used a moment later, by a client whose clock may differ: the credentials
# must outlast the URL by this much, or the URL is shortened by it.
MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Presigned:
    url: str
    expires_at: datetime

    @property
    def expires_at_text(self) -> str:
        """``expiresAt`` as the API writes timestamps: ISO 8601, UTC, seconds."""
        return self.expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")


@lru_cache(maxsize=64)
def _signer(access_key: str, secret_key: str, token: str | None) -> Any:
    """An S3 client on fixed credentials: Signature Version 4 (the headers it is given are signed into the URL).

    Fixed, so the credentials that sign are the ones whose expiry was read; one per set of
    credentials (a project session's, renewed hourly), reused for every URL they sign.
    """
    return boto3.client(
        "s3",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=Config(signature_version="s3v4"),
    )


def project_url(project_id: str, operation: str, params: dict[str, Any], seconds: int) -> Presigned:
    """A URL for ``operation`` (``put_object``, ``get_object``) on the project's object, valid ``seconds`` at most.

    The URL lives ``seconds`` unless the signing credentials end sooner (a lifetime longer than
    the role's session allows): then it lives as long as they do, and ``expires_at`` says so.
    """
    lasting = scoped.lasting_credentials(project_id, seconds + MARGIN_SECONDS)
    now = datetime.now(UTC)
    usable = int((lasting.expiration - now).total_seconds()) - MARGIN_SECONDS
    lifetime = max(1, min(seconds, usable))
    credentials = lasting.credentials
    signer = _signer(credentials.access_key, credentials.secret_key, credentials.token)
    url = signer.generate_presigned_url(operation, Params=params, ExpiresIn=lifetime)
    return Presigned(url, now.replace(microsecond=0) + timedelta(seconds=lifetime))
