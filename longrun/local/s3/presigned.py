"""S3's checks of a pre-signed (SigV4 query) request, which moto skips: the signature and the expiry.

A pre-signed ``PUT`` signs, besides the method, path and query, the headers listed in
``X-Amz-SignedHeaders`` (for an upload URL: ``content-length`` and ``content-type`` when given).
S3 recomputes the signature from the request it receives, so a body of another length or another
content type fails with ``SignatureDoesNotMatch``, and a request after ``X-Amz-Date`` +
``X-Amz-Expires`` fails with ``AccessDenied``. The local AWS endpoint does the same before moto
sees the request, so an upload URL's size and lifetime bind locally as they do on AWS. A caller
signs with the local test credentials (secret :data:`LOCAL_SECRET_KEY`) or with a session that
moto's STS issued (an AssumeRole: the API signs upload URLs as the project): then the session's
own secret checks the signature, and a URL used after the session's end is refused as S3 refuses
it, whatever its ``X-Amz-Expires`` says ("If you created a presigned URL using a temporary token,
then the URL expires when the token expires":
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html).
"""

from __future__ import annotations

import hmac
import time
from calendar import timegm
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

LOCAL_SECRET_KEY = "testing"


def _error(
    start_response: Callable[..., Any], code: str, message: str, status: str = "403 Forbidden"
) -> Iterable[bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    data = body.encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))])
    return [data]


def issued_session(access_key: str) -> tuple[str, float] | None:
    """(secret, end as epoch seconds) of a session moto's STS issued with this access key; None for another key."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends):
        for backend in list(sts_backends[account].values()):
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key:
                    return role.secret_access_key, timegm(role.expiration.utctimetuple())
    return None


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-length":
        return environ.get("CONTENT_LENGTH") or "0"
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def expected_signature(environ: dict[str, Any], params: dict[str, str], secret_key: str = LOCAL_SECRET_KEY) -> str:
    """The signature S3 would compute for this request (the query's own signature left out)."""
    access_key, _date, region, service, _ = params["X-Amz-Credential"].split("/")
    raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path = raw_path.split("?", 1)[0]
    query = "&".join(
        part for part in environ.get("QUERY_STRING", "").split("&") if not part.startswith("X-Amz-Signature=")
    )
    signed = params["X-Amz-SignedHeaders"].split(";")
    headers = {name: value for name in signed if (value := _header(environ, name)) is not None}
    request = AWSRequest(method=environ["REQUEST_METHOD"], url=f"http://{headers.get('host', '')}{path}?{query}",
                         headers=headers)  # fmt: skip
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(Credentials(access_key, secret_key), service, region)
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def refusal(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
    """S3's 403 for a pre-signed request that expired or whose signature does not match; None otherwise."""
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Signature=" not in query:
        return None
    params = dict(parse_qsl(query, keep_blank_values=True))
    try:
        signed_at = timegm(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        expires = int(params["X-Amz-Expires"])
        session = issued_session(params["X-Amz-Credential"].split("/", 1)[0])
        expected = expected_signature(environ, params, session[0] if session else LOCAL_SECRET_KEY)
    except (KeyError, ValueError):
        return _error(start_response, "AuthorizationQueryParametersError", "malformed pre-signed query parameters")
    if time.time() > signed_at + expires:
        return _error(start_response, "AccessDenied", "Request has expired")
    if session is not None and time.time() > session[1]:
        # S3's answer to expired temporary credentials (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)
        return _error(start_response, "ExpiredToken", "The provided token has expired.", "400 Bad Request")
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        return _error(
            start_response,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return None
