"""The local S3 front stores a PUT's bytes whatever its Content-Type, as S3 does.

A pre-signed PUT is sent over real HTTP (http.client: it adds no Content-Type of its own) to the
local AWS endpoint (``LocalAwsApp`` around moto's server app, with the local cloud's patches), and
the object is read back with GetObject. Before ``longrun/local/s3/patches.py`` a form Content-Type
made moto's server parse the body as a form: 0 bytes stored, or ``400`` for binary bytes.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from longrun.local.aws_server import LocalAwsApp
from longrun.local.s3 import patches as s3_patches

BUCKET = "put-bodies"
# What a browser or an HTTP library sends by default for a bare body (None: no Content-Type at all).
DEFAULT_TYPES = [
    None,
    "application/x-www-form-urlencoded",  # urllib's default, curl -d
    "application/x-www-form-urlencoded; charset=UTF-8",  # jQuery, axios with a string
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",  # a FormData's type on a raw body
    "text/plain;charset=UTF-8",  # fetch() with a string
    "application/octet-stream",  # fetch() with an ArrayBuffer, most SDKs
    "application/json",
]
# Bytes a form parser would mangle: '=' and '&' pairs, '+', '%' escapes, NUL, bytes that are not UTF-8,
# and a line that looks like a multipart boundary.
BODY = b"a=1&b=2+3%20x&&==\x00\xff\xfe\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW\r\nAction=SendMessage\n" + bytes(
    range(256)
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.core.request import Request
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    # Only the S3 patch, and only for this module: the other tests in this process run moto as it is
    # (tests/local/stepfunctions/test_patches.py proves a gap of moto alone).
    with pytest.MonkeyPatch.context() as restored:
        for target, name in ((Request, "want_form_data_parsed"), (DomainDispatcherApplication, "_get_body")):
            restored.setattr(target, name, getattr(target, name))  # recorded, to be put back after
        (patch,) = s3_patches.PATCHES
        patch.apply()
        app = LocalAwsApp(DomainDispatcherApplication(create_backend_app), "http://127.0.0.1:9", None)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        _s3(url).create_bucket(Bucket=BUCKET)
        yield url
        server.shutdown()
        server.server_close()


def _s3(endpoint: str) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(signature_version="s3v4"))  # fmt: skip


def _put(url: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    connection.request("PUT", f"{parts.path}?{parts.query}", body=body, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


@pytest.mark.parametrize("content_type", DEFAULT_TYPES, ids=lambda t: t or "none")
def test_a_presigned_put_keeps_its_bytes_whatever_the_content_type(endpoint: str, content_type: str | None) -> None:
    s3 = _s3(endpoint)
    key = f"projects/p/{content_type or 'none'}.bin".replace(";", "_").replace(" ", "_")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    status, text = _put(url, BODY, content_type)
    assert status == 200, text
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == BODY
    assert stored["ContentLength"] == len(BODY)
    if content_type is not None:
        assert stored["ContentType"] == content_type, "the type is the object's metadata, kept as sent"


def test_a_form_type_signed_into_the_url_passes_and_binds(endpoint: str) -> None:
    """With the form type signed in, that type (and that length) goes through; another type is S3's 403."""
    s3 = _s3(endpoint)
    form = "application/x-www-form-urlencoded"
    params = {"Bucket": BUCKET, "Key": "projects/p/signed-form.bin", "ContentType": form, "ContentLength": len(BODY)}
    url = s3.generate_presigned_url("put_object", Params=params, ExpiresIn=300)
    status, text = _put(url, BODY, "text/plain")
    assert status == 403 and b"SignatureDoesNotMatch" in text
    status, text = _put(url, BODY, None)
    assert status == 403 and b"SignatureDoesNotMatch" in text
    status, text = _put(url, BODY, form)
    assert status == 200, text
    assert s3.get_object(Bucket=BUCKET, Key="projects/p/signed-form.bin")["Body"].read() == BODY


def test_a_header_signed_put_and_a_multipart_part_keep_their_bytes(endpoint: str) -> None:
    """Not only pre-signed URLs: an SDK's PutObject and UploadPart with a form Content-Type too."""
    s3 = _s3(endpoint)
    s3.put_object(Bucket=BUCKET, Key="projects/p/sdk.bin", Body=BODY, ContentType="application/x-www-form-urlencoded")
    assert s3.get_object(Bucket=BUCKET, Key="projects/p/sdk.bin")["Body"].read() == BODY
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="projects/p/parts.bin", ContentType="multipart/form-data")
    part = (BODY * (5 * 1024 * 1024 // len(BODY) + 1))[: 5 * 1024 * 1024]
    url = s3.generate_presigned_url(
        "upload_part",
        Params={"Bucket": BUCKET, "Key": "projects/p/parts.bin", "UploadId": upload["UploadId"], "PartNumber": 1},
        ExpiresIn=300,
    )
    status, text = _put(url, part, "application/x-www-form-urlencoded")
    assert status == 200, text
    etag = s3.list_parts(Bucket=BUCKET, Key="projects/p/parts.bin", UploadId=upload["UploadId"])["Parts"][0]["ETag"]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="projects/p/parts.bin", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})  # fmt: skip
    assert s3.get_object(Bucket=BUCKET, Key="projects/p/parts.bin")["Body"].read() == part


def test_query_protocol_posts_are_still_read_as_forms(endpoint: str) -> None:
    """The other side of the rule: a POST form (STS, SQS, ...) is still the Query protocol's Action=..."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                       aws_secret_access_key="testing")  # fmt: skip
    assert sts.get_caller_identity()["Account"]
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing",
                       aws_secret_access_key="testing")  # fmt: skip
    queue = sqs.create_queue(QueueName="put-bodies")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="a=1&b=2")
    assert sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"] == "a=1&b=2"
