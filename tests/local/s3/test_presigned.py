"""The local AWS endpoint checks pre-signed S3 requests as S3 does: the signed headers and the expiry."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from moto import mock_aws

from longrun.local.s3 import presigned

ENDPOINT = "http://127.0.0.1:4566"


def _url(expires: int = 900, **params: Any) -> str:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=ENDPOINT, aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(signature_version="s3v4"))  # fmt: skip
    return s3.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "projects/p/a b.txt", **params},
                                     ExpiresIn=expires)  # fmt: skip


def _environ(url: str, length: int, content_type: str | None = None, method: str = "PUT") -> dict[str, Any]:
    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": parts.path.replace("%20", " "),
        "QUERY_STRING": parts.query,
        "RAW_URI": f"{parts.path}?{parts.query}",
        "HTTP_HOST": parts.netloc,
        "CONTENT_LENGTH": str(length),
    }
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    return environ


def _status(environ: dict[str, Any]) -> str | None:
    seen: list[str] = []
    body = presigned.refusal(environ, lambda status, headers: seen.append(status))
    return None if body is None else seen[0] + " " + b"".join(body).decode()


def test_the_request_the_url_was_made_for_passes():
    assert _status(_environ(_url(ContentLength=5, ContentType="text/plain"), 5, "text/plain")) is None


def test_another_length_or_content_type_does_not_match_the_signature():
    url = _url(ContentLength=5, ContentType="text/plain")
    assert "SignatureDoesNotMatch" in _status(_environ(url, 6, "text/plain"))
    assert "SignatureDoesNotMatch" in _status(_environ(url, 5, "text/html"))


def test_a_tampered_key_or_method_does_not_match():
    url = _url(ContentLength=5)
    assert "SignatureDoesNotMatch" in _status(_environ(url.replace("a%20b.txt", "other.txt"), 5))
    assert "SignatureDoesNotMatch" in _status(_environ(url, 5, method="DELETE"))


def test_an_expired_url_is_refused(monkeypatch):
    url = _url(expires=60, ContentLength=5)
    monkeypatch.setattr(time, "time", lambda: time.mktime(time.gmtime()) + 3600)
    assert "Request has expired" in _status(_environ(url, 5))


def test_requests_that_are_not_pre_signed_are_left_to_moto():
    assert presigned.refusal({"REQUEST_METHOD": "PUT", "QUERY_STRING": "", "PATH_INFO": "/b/k"}, print) is None


def _session_url(expires: int, session_seconds: int) -> str:
    """A URL signed with a session moto's STS issued, as the API signs upload URLs (as the project)."""
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    credentials = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/p", RoleSessionName="longrun-p",
                                  DurationSeconds=session_seconds)["Credentials"]  # fmt: skip
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=ENDPOINT, config=Config(signature_version="s3v4"),
                      aws_access_key_id=credentials["AccessKeyId"],
                      aws_secret_access_key=credentials["SecretAccessKey"],
                      aws_session_token=credentials["SessionToken"])  # fmt: skip
    return s3.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "projects/p/a b.txt",
                                     "ContentLength": 5}, ExpiresIn=expires)  # fmt: skip


def test_a_url_signed_by_an_sts_session_is_checked_with_that_sessions_secret():
    with mock_aws():
        url = _session_url(expires=900, session_seconds=3600)
        assert _status(_environ(url, 5)) is None
        assert "SignatureDoesNotMatch" in _status(_environ(url, 6))


def test_a_url_dies_with_the_session_that_signed_it(monkeypatch):
    """S3: a URL signed with temporary credentials expires when they do, even if X-Amz-Expires says later."""
    with mock_aws():
        url = _session_url(expires=3600, session_seconds=900)
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + 1000)  # the session has ended, the URL's hour has not
        assert "ExpiredToken" in _status(_environ(url, 5))
