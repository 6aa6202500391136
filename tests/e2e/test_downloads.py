"""Downloads, and uploads that keep their bytes whatever their Content-Type, through real HTTP.

The issue's "done when": an upload sent with a form content type reaches the workspace byte for
byte (upload → S3 event → sync job → the file on the local EFS), and a download gives it back.
Every PUT goes to the local S3 endpoint with http.client, which adds no Content-Type of its own,
so each case sends exactly the type named (or none).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.helpers import create_project, http
from tests.e2e.test_openapi_conformance import check
from tests.e2e.test_sync import USER, settle, sync, wait_for_file, workspace

# What a browser or an HTTP library sends by default for a bare body (None: no Content-Type at all).
DEFAULT_TYPES = {
    "none.bin": None,
    "urllib-form.bin": "application/x-www-form-urlencoded",  # urllib's default, curl -d
    "jquery-form.bin": "application/x-www-form-urlencoded; charset=UTF-8",
    "multipart.bin": "multipart/form-data; boundary=----WebKitFormBoundaryAbc123",  # a raw body sent with it
    "fetch-string.txt": "text/plain;charset=UTF-8",  # fetch() with a string
    "octets.bin": "application/octet-stream",
    "data.json": "application/json",
}
# What a form parser would mangle: '=' and '&', '+', '%' escapes, NUL, bytes that are not UTF-8, a
# multipart boundary line and an "Action=" (what the local S3 front once took for another service's call).
BODY = (
    b"a=1&b=2+3%20x&&==\x00\xff\xfe\r\n------WebKitFormBoundaryAbc123\r\n"
    b'Content-Disposition: form-data; name="file"\r\n\r\nAction=SendMessage&x=\r\n' + bytes(range(256))
)


@pytest.fixture(scope="module")
def project(local_cloud) -> str:
    return create_project(local_cloud, USER)


def _grant(cloud: Any, project_id: str, path: str, **extra: Any) -> dict[str, Any]:
    response = http(cloud, "POST", f"/projects/{project_id}/uploads", USER, json={"path": path, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _put(url: str, body: bytes, content_type: str | None) -> tuple[int, str]:
    """A PUT with exactly these headers: Content-Length, and Content-Type only when given."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    connection.request("PUT", f"{parts.path}?{parts.query}", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.read().decode(errors="replace")
    connection.close()
    return answer


def download(cloud: Any, project_id: str, path: str, user: str = USER) -> httpx.Response:
    response = http(cloud, "POST", f"/projects/{project_id}/downloads", user, json={"path": path})
    check("POST", "/projects/{projectId}/downloads", response)
    return response


def fetch(ticket: dict[str, Any]) -> httpx.Response:
    got = httpx.request(ticket["method"], ticket["url"], timeout=30)
    assert got.status_code == 200, got.text
    return got


def test_uploads_keep_their_bytes_whatever_the_content_type_and_downloads_give_them_back(local_cloud, project):
    for name, content_type in DEFAULT_TYPES.items():
        status, text = _put(_grant(local_cloud, project, f"types/{name}")["url"], BODY, content_type)
        assert status == 200, (content_type, text)
    settle(local_cloud, project)
    root = workspace(local_cloud, project)
    for name, content_type in DEFAULT_TYPES.items():
        # In the workspace, byte for byte, after the upload's own sync (S3 event → SQS → trigger → sync job).
        assert wait_for_file(root / "types" / name, BODY) == BODY, content_type
        # And S3 gives the same bytes back through a download.
        ticket = download(local_cloud, project, f"types/{name}")
        assert ticket.status_code == 200, ticket.text
        assert ticket.json()["size"] == len(BODY)
        got = fetch(ticket.json())
        assert got.content == BODY, content_type
        if content_type is not None:
            assert got.headers["content-type"] == content_type, "the type is kept as the object's metadata"


def test_a_content_type_signed_into_the_url_still_binds(local_cloud, project):
    """The form type signed in passes; another type, or none, is S3's 403 SignatureDoesNotMatch."""
    form = "application/x-www-form-urlencoded"
    grant = _grant(local_cloud, project, "signed/form.bin", contentType=form, size=len(BODY))
    assert grant["headers"] == {"Content-Type": form, "Content-Length": str(len(BODY))}
    for other in ("text/plain;charset=UTF-8", "application/octet-stream", None):
        status, text = _put(grant["url"], BODY, other)
        assert status == 403 and "SignatureDoesNotMatch" in text, (other, status, text)
    status, text = _put(grant["url"], BODY, form)
    assert status == 200, text
    assert wait_for_file(workspace(local_cloud, project) / "signed" / "form.bin", BODY) == BODY


def test_a_download_is_s3s_copy_until_an_efs_to_s3_sync(local_cloud, project):
    """What the ticket says (size, lastModified, etag) is S3's object, not the live workspace."""
    status, _ = _put(_grant(local_cloud, project, "notes/todo.md")["url"], b"first\n", "text/markdown")
    assert status == 200
    settle(local_cloud, project)
    live = workspace(local_cloud, project) / "notes" / "todo.md"
    wait_for_file(live, b"first\n")
    before = download(local_cloud, project, "notes/todo.md").json()
    live.write_bytes(b"edited in the workspace, not synced yet\n")
    stale = download(local_cloud, project, "notes/todo.md").json()
    assert fetch(stale).content == b"first\n" and stale["size"] == 6 and stale["etag"] == before["etag"]
    time.sleep(1.1)  # S3's LastModified has a resolution of a second
    sync(local_cloud, project, direction="efs-to-s3")
    fresh = download(local_cloud, project, "notes/todo.md").json()
    got = fetch(fresh)
    assert got.content == b"edited in the workspace, not synced yet\n"
    assert fresh["size"] == len(got.content) and fresh["etag"] != before["etag"]
    assert fresh["lastModified"] > before["lastModified"]
    assert got.headers["etag"] == fresh["etag"], "the GET's ETag tells a client which version it got"


def test_a_download_ticket_names_the_file_and_is_honest_about_its_end(local_cloud, project):
    name = 'r\u00e9sum\u00e9 "final".txt'
    status, _ = _put(_grant(local_cloud, project, f"docs/{name}")["url"], b"cv\n", "text/plain")
    assert status == 200
    response = download(local_cloud, project, f"docs/{name}")
    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket["method"] == "GET" and ticket["key"] == f"projects/{project}/docs/{name}"
    now = datetime.now(UTC)
    expires = datetime.fromisoformat(ticket["expiresAt"].replace("Z", "+00:00"))
    assert now + timedelta(seconds=800) < expires <= now + timedelta(seconds=901)
    got = fetch(ticket)
    assert got.content == b"cv\n"
    disposition = got.headers["content-disposition"]
    fallback, exact = 'filename="resume _final_.txt"', "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt"
    assert disposition == f"attachment; {fallback}; {exact}"
    tampered = ticket["url"].replace("docs/", "other/", 1)
    assert httpx.get(tampered, timeout=30).status_code == 403, "the key is signed into the URL"
    put = httpx.put(ticket["url"], content=b"x", timeout=30)
    assert put.status_code == 403, "a download URL cannot write"


def test_a_missing_file_a_folder_and_strangers_are_404(local_cloud, project):
    status, _ = _put(_grant(local_cloud, project, "tree/leaf.txt")["url"], b"leaf\n", None)
    assert status == 200
    for path in ("tree", "tree/none.txt", "leaf.txt"):
        missing = download(local_cloud, project, path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound", missing.text
    stranger = download(local_cloud, project, "tree/leaf.txt", user="mallory")
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "NotFound"
    assert "leaf" not in stranger.text
    unknown = http(local_cloud, "POST", "/projects/prj-does-not-exist/downloads", USER, json={"path": "a.txt"})
    assert unknown.status_code == 404
    for body in ({}, {"path": "a.txt", "sync": True}, {"path": ["a"]}):
        bad = http(local_cloud, "POST", f"/projects/{project}/downloads", USER, json=body)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "ValidationError", body
        check("POST", "/projects/{projectId}/downloads", bad)
