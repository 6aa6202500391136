"""What the local AWS endpoint was asked, counted as AWS meters it: requests per service and operation.

AWS counts every API call per service and operation (CloudWatch's ``AWS/Usage`` ``CallCount``) and bills
most services by them; moto keeps no such count. The endpoint counts each request it answers itself
(not the Lambda invocations it forwards, which the Lambda runtime reports in its ``REPORT`` lines, nor
the DynamoDB requests it forwards to DynamoDB's own process, which counts them there) and serves the
totals at ``GET /_longrun/usage``; ``bench/costs.py`` takes the difference around each job.

Two counts need more than the operation's name:

* **DynamoDB request units.** On-demand tables bill write request units (1 per KB written, 2 in a
  transaction) and read request units (per 4 KB read: 0.5 eventually consistent, 1 strongly, 2 in a
  transaction) (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/capacity-mode.html).
  They are *estimated* from the sizes on the wire (the JSON of the items written, of the response
  read), which are a little larger than DynamoDB's item sizes, so the estimate errs high; per table, so
  that writes to a table with global secondary indexes can be counted once more per index.
* **SQS receives that returned messages.** Lambda's pollers long-poll every queue with an event source
  mapping all the time; the local pollers poll every second. Empty receives are an idle cost, not a
  job's, so a receive is counted as ``ReceiveMessage`` only when it returned messages and as
  ``ReceiveMessage (empty)`` otherwise.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

PATH = "/_longrun/usage"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/(?P<service>[^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(
    r"X-Amz-Credential=[^&]*?(?:/|%2F)\d{8}(?:/|%2F)[^/%]+(?:/|%2F)(?P<service>[a-z0-9-]+)(?:/|%2F)"
)
# Reads of DynamoDB: (kind, request units per 4 KB) where the request does not say ConsistentRead.
_DYNAMODB_READS = {"GetItem": 0.5, "Query": 0.5, "Scan": 0.5, "BatchGetItem": 0.5, "TransactGetItems": 2.0}
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class Usage:
    """Thread-safe counters: ``{"calls": {"service Operation": n}, "dynamodb": {table: {"read": u, "write": u}}}``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._units: dict[str, dict[str, float]] = {}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self._calls), "dynamodb": {t: dict(u) for t, u in self._units.items()}}

    def _count(self, key: str) -> None:
        with self._lock:
            self._calls[key] = self._calls.get(key, 0) + 1

    def _units_for(self, table: str, kind: str, units: float) -> None:
        with self._lock:
            entry = self._units.setdefault(table, {"read": 0.0, "write": 0.0})
            entry[kind] += units

    def observe(
        self, environ: dict[str, Any], start_response: Callable[..., Any], answer: Callable[..., Iterable[bytes]]
    ) -> Iterable[bytes]:
        """``answer(environ, start_response)``, counted; DynamoDB and SQS receive bodies are read to size them."""
        service, operation, body = _classify(environ)
        key = f"{service} {operation}"
        if service not in ("dynamodb", "sqs") or (service == "sqs" and operation != "ReceiveMessage"):
            self._count(key)
            return answer(environ, start_response)
        response = b"".join(answer(environ, start_response))
        if service == "sqs":
            got = b'"Messages"' in response or b"<Message>" in response
            self._count(key if got else f"{key} (empty)")
        else:
            self._count(key)
            self._dynamodb(operation, body, response)
        return [response]

    def _dynamodb(self, operation: str, body: bytes, response: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return
        if operation in _DYNAMODB_WRITES:
            for table, size, factor in _writes(operation, request):
                self._units_for(table, "write", factor * max(1, math.ceil(size / 1024)))
        elif operation in _DYNAMODB_READS:
            per_4k = 1.0 if request.get("ConsistentRead") else _DYNAMODB_READS[operation]
            tables = _read_tables(operation, request)
            share = len(response) / max(1, len(tables))
            for table in tables:
                self._units_for(table, "read", per_4k * max(1, math.ceil(share / 4096)))


def _writes(operation: str, request: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(table, bytes written, units per KB) of each item a write request writes."""

    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")))

    if operation == "TransactWriteItems":
        out = []
        for item in request.get("TransactItems", []):
            ((kind, spec),) = item.items()
            if kind != "ConditionCheck":  # a condition check is billed as a read; it writes nothing
                out.append((spec.get("TableName", "?"), size(spec.get("Item") or spec.get("Key") or spec), 2))
        return out
    if operation == "BatchWriteItem":
        items = request.get("RequestItems", {})
        return [(table, size(entry), 1) for table, entries in items.items() for entry in entries]
    return [(request.get("TableName", "?"), size(request.get("Item") or request), 1)]


def _read_tables(operation: str, request: dict[str, Any]) -> list[str]:
    if operation == "BatchGetItem":
        return [t for t, spec in request.get("RequestItems", {}).items() for _ in spec.get("Keys", [])]
    if operation == "TransactGetItems":
        return [item["Get"].get("TableName", "?") for item in request.get("TransactItems", []) if "Get" in item]
    return [request.get("TableName", "?")]


def classify(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of a request, as counted here; the state keeper saves a service a request changed."""
    service, operation, _ = _classify(environ)
    return service, operation


def _classify(environ: dict[str, Any]) -> tuple[str, str, bytes]:
    """(service, operation, request body) of a request, from its signature's scope and its target or action."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
    service = scope["service"] if scope else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rpartition(".")[2], body
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("Action", [""])[0]
    # Only a POST carries a Query-protocol form; a PUT's body is an object's bytes (longrun/local/s3/patches.py).
    if (
        not action
        and environ.get("REQUEST_METHOD") == "POST"
        and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    ):
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    if action:
        return service, action, body
    if service == "s3":
        return service, _s3_operation(environ, query), body
    return service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}", body


def _s3_operation(environ: dict[str, Any], query: dict[str, list[str]]) -> str:
    """S3's REST calls by the classes its pricing names: PUT, COPY, POST, LIST; GET and the rest; DELETE."""
    method = environ.get("REQUEST_METHOD", "GET")
    has_key = environ.get("PATH_INFO", "/").strip("/").count("/") >= 1 or (
        ".s3." in environ.get("HTTP_HOST", "") and environ.get("PATH_INFO", "/") not in ("", "/")
    )
    if method == "PUT":
        return "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject"
    if method == "POST":
        return "DeleteObjects" if "delete" in query else "POST (multipart, other)"
    if method == "DELETE":
        return "DeleteObject"
    if method == "GET" and not has_key:
        return "ListObjects"
    return "HeadObject" if method == "HEAD" else "GetObject"
