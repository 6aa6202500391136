"""An upload URL's ``expiresAt`` is the truth: never later than the credentials that signed it.

S3 stops honouring a URL signed with temporary credentials when they expire, whatever its own
expiry says (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html,
"Expiration time for presigned URLs"). The API signs with the project's session (core.scoped), whose
Expiration is known: renewed when it has less left than the URL needs, and the URL cut to it when
even a fresh session is shorter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core import presign, scoped

from .conftest import ACCOUNT, USER
from .test_api import call

PROJECT = "prj-0123456789abcdef"


@pytest.fixture
def project(aws: Any) -> str:
    aws.table("PROJECTS_TABLE").put_item(
        Item={"pk": f"project#{PROJECT}", "projectId": PROJECT, "userId": USER, "name": "demo"}
    )
    return PROJECT


def _sessions() -> list[Any]:
    from moto.sts.models import sts_backends

    name = scoped.session_name(PROJECT)
    return [r for r in sts_backends[ACCOUNT]["aws"].assumed_roles if r.session_name == name]


def _upload() -> dict[str, Any]:
    answer = call("POST", f"/projects/{PROJECT}/uploads", body={"path": "src/app.js", "size": 3})
    assert answer.status == 200, answer.body
    return answer.body


def _signed(url: str) -> tuple[str, datetime]:
    """The URL's access key, and when S3 stops honouring it by its own expiry."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return query["X-Amz-Credential"].split("/", 1)[0], signed_at + timedelta(seconds=int(query["X-Amz-Expires"]))


def _expires_at(grant: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(grant["expiresAt"].replace("Z", "+00:00"))


def _session_of(access_key: str) -> Any:
    found = [s for s in _sessions() if s.access_key_id == access_key]
    assert len(found) == 1, f"the URL is signed by {access_key}, no session of the project (its end is unknown)"
    return found[0]


def test_an_upload_url_is_signed_by_the_projects_session_and_ends_before_it(project: str) -> None:
    grant = _upload()
    access_key, url_end = _signed(grant["url"])
    session = _session_of(access_key)  # not the function's own credentials, whose end is unknown
    expiration = session.expiration.replace(tzinfo=UTC)
    assert _expires_at(grant) <= url_end <= expiration
    assert _expires_at(grant) >= datetime.now(UTC) + timedelta(seconds=890)  # the 900 s asked for


def test_a_session_with_less_left_than_the_url_needs_is_renewed(project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """20 minutes left (botocore renews at 15): a 30-minute URL gets a fresh session, not a lie."""
    monkeypatch.setenv("UPLOAD_URL_SECONDS", "1800")
    monkeypatch.setattr(scoped, "SESSION_SECONDS", 1200)
    old = scoped.project_session(PROJECT).get_credentials().get_frozen_credentials().access_key
    monkeypatch.setattr(scoped, "SESSION_SECONDS", 3600)

    grant = _upload()
    access_key, url_end = _signed(grant["url"])
    assert access_key != old and len(_sessions()) == 2
    expiration = _session_of(access_key).expiration.replace(tzinfo=UTC)
    assert datetime.now(UTC) + timedelta(seconds=1790) <= _expires_at(grant) <= url_end <= expiration
    # The renewed session is the project's from now on: the next URL needs no other AssumeRole.
    assert _signed(_upload()["url"])[0] == access_key and len(_sessions()) == 2


def test_a_url_longer_than_any_session_is_cut_to_the_sessions_end(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Role chaining caps a session at an hour: a two-hour URL says it ends with the session."""
    monkeypatch.setenv("UPLOAD_URL_SECONDS", "7200")
    grant = _upload()
    access_key, url_end = _signed(grant["url"])
    expiration = _session_of(access_key).expiration.replace(tzinfo=UTC)
    assert _expires_at(grant) <= url_end <= expiration
    assert expiration - _expires_at(grant) >= timedelta(seconds=presign.MARGIN_SECONDS)


def test_the_signing_helper_serves_any_operation_of_the_project(project: str) -> None:
    """Downloads (a later issue) sign the same way: ``get_object`` on the project's key."""
    signed = presign.project_url(PROJECT, "get_object", {"Bucket": "b", "Key": f"projects/{PROJECT}/a.txt"}, 600)
    access_key, url_end = _signed(signed.url)
    assert signed.expires_at <= url_end <= _session_of(access_key).expiration.replace(tzinfo=UTC)


def _download(aws: Any) -> dict[str, Any]:
    aws.client("s3").put_object(Bucket=aws.bucket, Key=f"projects/{PROJECT}/src/app.js", Body=b"abc")
    answer = call("POST", f"/projects/{PROJECT}/downloads", body={"path": "src/app.js"})
    assert answer.status == 200, answer.body
    return answer.body


def test_a_download_url_is_signed_by_the_projects_session_and_ends_before_it(aws: Any, project: str) -> None:
    grant = _download(aws)
    access_key, url_end = _signed(grant["url"])
    expiration = _session_of(access_key).expiration.replace(tzinfo=UTC)
    assert _expires_at(grant) <= url_end <= expiration
    assert _expires_at(grant) >= datetime.now(UTC) + timedelta(seconds=890)  # DOWNLOAD_URL_SECONDS' 900


def test_a_download_url_longer_than_any_session_is_cut_to_the_sessions_end(
    aws: Any, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOWNLOAD_URL_SECONDS", "7200")
    grant = _download(aws)
    access_key, url_end = _signed(grant["url"])
    expiration = _session_of(access_key).expiration.replace(tzinfo=UTC)
    assert _expires_at(grant) <= url_end <= expiration
    assert expiration - _expires_at(grant) >= timedelta(seconds=presign.MARGIN_SECONDS)
