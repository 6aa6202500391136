"""``POST /projects/{projectId}/downloads``: a pre-signed GET for one file S3 holds, under the upload rules.

Through ``api.app.handler`` on moto: the ticket's fields against the object, the URL fetched (moto
answers ``requests`` in-process) with the file's name in Content-Disposition, a missing file and
another user's project 404. The hostile-path corpus and ``expiresAt`` are shared with uploads:
tests/unit/test_file_path_rules.py and tests/unit/test_presigned_expiry.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from core import downloads, scoped

from .conftest import OTHER, USER
from .test_api import assert_error, call, put_project

PROJECT = "prj-0123456789abcdef"
BYTES = b"a=1&b=2\x00\xff binary and = & characters\n"


@pytest.fixture
def project(aws: Any) -> str:
    put_project(aws, PROJECT, USER)
    return PROJECT


def _put(aws: Any, path: str, data: bytes = BYTES, **extra: Any) -> dict[str, Any]:
    s3 = aws.client("s3")
    s3.put_object(Bucket=aws.bucket, Key=f"projects/{PROJECT}/{path}", Body=data, **extra)
    return s3.head_object(Bucket=aws.bucket, Key=f"projects/{PROJECT}/{path}")


def _download(path: Any, user: str = USER, project_id: str = PROJECT) -> Any:
    return call("POST", f"/projects/{project_id}/downloads", user=user, body={"path": path})


def test_a_file_s3_holds_gets_a_signed_get_that_answers_its_bytes(aws: Any, project: str) -> None:
    head = _put(aws, "src/app.js", ContentType="text/javascript")
    answer = _download("src/app.js")
    assert answer.status == 200, answer.body
    ticket = answer.body
    assert set(ticket) == {"url", "method", "key", "path", "size", "lastModified", "etag", "expiresAt"}
    assert ticket["method"] == "GET"
    assert ticket["key"] == f"projects/{PROJECT}/src/app.js" and ticket["path"] == "src/app.js"
    assert ticket["size"] == len(BYTES) and ticket["etag"] == head["ETag"]
    modified = datetime.fromisoformat(ticket["lastModified"].replace("Z", "+00:00"))
    assert abs(modified - head["LastModified"].astimezone(UTC)) < timedelta(seconds=1)
    query = {k: v[0] for k, v in parse_qs(urlsplit(ticket["url"]).query).items()}
    assert query["response-content-disposition"] == "attachment; filename=\"app.js\"; filename*=UTF-8''app.js"
    assert "X-Amz-Signature" in query and "X-Amz-Security-Token" in query, "signed by a session, not by keys"
    got = requests.get(ticket["url"], timeout=10)
    assert got.status_code == 200 and got.content == BYTES
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert got.headers["Content-Type"] == "text/javascript"


def test_the_url_is_signed_by_the_projects_session(aws: Any, project: str) -> None:
    """Not the function's own credentials: the session whose policy holds the project's objects only."""
    from moto.sts.models import sts_backends

    _put(aws, "a.txt")
    query = parse_qs(urlsplit(_download("a.txt").body["url"]).query)
    access_key = query["X-Amz-Credential"][0].split("/", 1)[0]
    sessions = [r for b in sts_backends.values() for r in b["aws"].assumed_roles if r.access_key_id == access_key]
    assert [s.session_name for s in sessions] == [scoped.session_name(PROJECT)]


def test_a_missing_file_is_404_and_so_is_a_folder(aws: Any, project: str) -> None:
    _put(aws, "src/app.js")
    _put(aws, "src-old.txt")  # sorts before "src/…": the listing's first key is not the folder's
    for path in ("nope.txt", "src", "src/app", "src/app.js/x", "SRC/app.js"):
        error = assert_error(_download(path), 404, "NotFound")
        assert "efs-to-s3" in error["message"], "the message says how a file reaches S3"


def test_the_path_is_found_as_stored_nfc(aws: Any, project: str) -> None:
    """Uploads store NFC; a download asked in NFD (macOS) finds the same file."""
    _put(aws, "docs/r\u00e9sum\u00e9.txt")
    answer = _download("docs/re\u0301sume\u0301.txt")
    assert answer.status == 200, answer.body
    assert answer.body["path"] == "docs/r\u00e9sum\u00e9.txt"


def test_another_users_project_is_404_even_for_a_file_it_holds(aws: Any, project: str) -> None:
    _put(aws, "secret.txt")
    error = assert_error(_download("secret.txt", user=OTHER), 404, "NotFound")
    assert "secret" not in error["message"], "nothing of the file is confirmed to a stranger"
    assert_error(_download("secret.txt", project_id="prj-does-not-exist"), 404, "NotFound")
    assert_error(_download("secret.txt", project_id="not a valid id"), 404, "NotFound")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{}", "path"),
        ('{"path": "a.txt", "sync": true}', "sync"),
        ('{"path": 7}', "path"),
        ('{"path": ""}', "path"),
        ("[]", "(body)"),
        ("not json", "(body)"),
    ],
)
def test_a_malformed_request_is_400_with_its_path(aws: Any, project: str, raw: str, detail: str) -> None:
    answer = call("POST", f"/projects/{PROJECT}/downloads", raw=raw)
    error = assert_error(answer, 400, "ValidationError")
    assert detail in [d["path"] for d in error["details"]], error


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        ("app.js", "app.js", "app.js"),
        ("h\u00e9llo w\u00f6rld.txt", "hello world.txt", "h%C3%A9llo%20w%C3%B6rld.txt"),
        ('say "hi".txt', "say _hi_.txt", "say%20%22hi%22.txt"),
        ("50%;x.csv", "50_;x.csv", "50%25%3Bx.csv"),
        ("\ud55c\uae00.md", "__.md", "%ED%95%9C%EA%B8%80.md"),
        ("\u4e2d", "_", "%E4%B8%AD"),
        ("   ", "download", "%20%20%20"),
    ],
)
def test_the_file_is_saved_under_its_own_name(name: str, fallback: str, encoded: str) -> None:
    """RFC 6266: an ASCII ``filename`` for old clients, the exact name in ``filename*`` (RFC 8187)."""
    value = downloads.content_disposition(f"some/dir/{name}")
    assert value == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert value.isascii() and value.isprintable()
    assert unquote(value.split("''", 1)[1]) == name


def test_the_buckets_cors_rule_lets_a_page_fetch_a_download(aws: Any) -> None:
    """A web IDE may fetch() the URL (to show or zip the file) as well as open it: GET beside the uploads' PUT."""
    [rule] = aws.client("s3").get_bucket_cors(Bucket=aws.bucket)["CORSRules"]
    assert set(rule["AllowedMethods"]) == {"PUT", "GET"}
