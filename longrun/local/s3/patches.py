"""Patches of moto for S3: declared for :mod:`longrun.local.patches`.

**A PUT's body is the object, whatever its Content-Type.** S3 stores the bytes of a ``PutObject``
(or ``UploadPart``) as they come; ``Content-Type`` is only metadata kept with the object and
returned by ``GetObject`` ("A standard MIME type describing the format of the contents",
https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html). moto's server is a Flask app,
and werkzeug parses every request body whose ``Content-Type`` is a form type
(``application/x-www-form-urlencoded``, ``multipart/form-data``) into ``request.form``, consuming
the stream: ``request.data`` is then empty and moto stores a 0-byte object (or, for a body that is
not valid form data, answers ``400``). A ``PUT`` with urllib's default Content-Type, or curl's for
``-d``, lost its bytes silently.

In AWS a body is form data only where a protocol says so: the Query protocol's ``POST`` (SQS,
STS, IAM, SNS, ... "HTTP requests that use the HTTP verb GET or POST and a Query parameter named
Action", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html) and S3's
browser upload, ``POST Object`` with ``multipart/form-data``
(https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html). Both are ``POST``s, so the
patch keeps form parsing for ``POST`` and leaves every other method's body alone, in both places
moto reads one:

* werkzeug's ``request.form`` (``Request.want_form_data_parsed``): a ``PUT``'s bytes reach moto's
  S3 unparsed. moto's decorator mode builds the same ``Request``, so ``mock_aws`` agrees;
* the server's dispatcher, which reads a request without an ``Authorization`` header (a
  pre-signed URL carries its signature in the query) as a Query-protocol form to find the
  service: it decoded the body as UTF-8 and, on a binary body, left the stream consumed (moto then
  answered ``400``); and a file whose text was ``Action=...`` could have been routed to another
  service. It now reads ``POST`` bodies only, and always puts back the bytes it read.
"""

from __future__ import annotations

import io
from typing import Any

from longrun.local.patches import Patch


def _form_data_only_in_posts() -> None:
    from moto.core.request import Request

    def want_form_data_parsed(self: Request) -> bool:
        """werkzeug's rule (a Content-Type was sent), for ``POST`` only: elsewhere the body is the payload."""
        return self.method == "POST" and bool(self.environ.get("CONTENT_TYPE"))

    Request.want_form_data_parsed = property(want_form_data_parsed)  # type: ignore[method-assign,assignment]

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def _get_body(self: DomainDispatcherApplication, environ: dict[str, Any]) -> str | None:
        """A POST's form body as text (the Query protocol's ``Action=...``), put back for moto to read again."""
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0:
            return None
        data = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(data)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:  # not a Query request: no service is named in it
            return None

    DomainDispatcherApplication._get_body = _get_body  # type: ignore[method-assign]


PATCHES = (
    Patch(
        service="s3",
        name="put-bodies-are-never-form-data",
        behaviour=(
            "PutObject and UploadPart store the request's bytes whatever its Content-Type, which is only the "
            "object's metadata; only POSTs (the Query protocol, S3's POST Object) carry form data."
        ),
        doc="https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html",
        gap=(
            "moto's server lets werkzeug parse any body sent with a form Content-Type into request.form, "
            "consuming it: a PUT with application/x-www-form-urlencoded or multipart/form-data stored a 0-byte "
            "object; its dispatcher read an unsigned-header (pre-signed) form body as UTF-8 to find the service "
            "and, on binary bytes, left it consumed (400)."
        ),
        replaces=(
            "moto.core.request:Request.want_form_data_parsed",
            "moto.moto_server.werkzeug_app:DomainDispatcherApplication._get_body",
        ),
        apply=_form_data_only_in_posts,
    ),
)
