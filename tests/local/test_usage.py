"""The local AWS endpoint's request counts (longrun.local.usage): what bench/costs.py bills from."""

from __future__ import annotations

import io
import json
from typing import Any

from longrun.local.aws_server import LocalAwsApp
from longrun.local.usage import PATH, Usage


def _environ(service: str, *, target: str = "", body: bytes = b"", method: str = "POST", path: str = "/",
             query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    environ.update(headers or {})
    return environ


def _answer(payload: bytes) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()  # the app still gets the whole body
        start_response("200 OK", [])
        return [payload]

    return app


def test_calls_are_counted_per_service_and_operation():
    usage = Usage()
    ok = _answer(b"{}")
    for _ in range(2):
        usage.observe(_environ("states", target="AWSStepFunctions.StartExecution", body=b"{}"), lambda *a: None, ok)
    usage.observe(_environ("events", target="AWSEvents.PutEvents", body=b"{}"), lambda *a: None, ok)
    usage.observe(_environ("s3", method="PUT", path="/bucket/projects/p/data/a.txt", body=b"x"), lambda *a: None, ok)
    usage.observe(_environ("s3", method="GET", path="/bucket", query="list-type=2"), lambda *a: None, ok)
    calls = usage.snapshot()["calls"]
    assert calls == {"states StartExecution": 2, "events PutEvents": 1, "s3 PutObject": 1, "s3 ListObjects": 1}


def test_a_presigned_put_is_counted_by_its_query_signature():
    usage = Usage()
    signed = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=testing%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
    environ = _environ("s3", method="PUT", path="/bucket/k", body=b"x", query=signed)
    del environ["HTTP_AUTHORIZATION"]
    usage.observe(environ, lambda *a: None, _answer(b""))
    assert usage.snapshot()["calls"] == {"s3 PutObject": 1}


def test_empty_sqs_receives_are_told_apart():
    usage = Usage()
    target = "AmazonSQS.ReceiveMessage"
    usage.observe(_environ("sqs", target=target, body=b"{}"), lambda *a: None, _answer(b"{}"))
    usage.observe(_environ("sqs", target=target, body=b"{}"), lambda *a: None, _answer(b'{"Messages": [{}]}'))
    assert usage.snapshot()["calls"] == {"sqs ReceiveMessage (empty)": 1, "sqs ReceiveMessage": 1}


def test_dynamodb_request_units_are_estimated_per_table():
    usage = Usage()
    put = {"TableName": "jobs", "Item": {"jobId": {"S": "j"}, "blob": {"S": "x" * 1500}}}
    usage.observe(_environ("dynamodb", target="DynamoDB_20120810.PutItem", body=json.dumps(put).encode()),
                  lambda *a: None, _answer(b"{}"))  # fmt: skip
    transact = {"TransactItems": [
        {"Put": {"TableName": "events", "Item": {"jobId": {"S": "j"}}}},
        {"ConditionCheck": {"TableName": "jobs", "Key": {"jobId": {"S": "j"}}, "ConditionExpression": "x"}},
    ]}  # fmt: skip
    transact_body = json.dumps(transact).encode()
    usage.observe(_environ("dynamodb", target="DynamoDB_20120810.TransactWriteItems", body=transact_body),
                  lambda *a: None, _answer(b"{}"))  # fmt: skip
    get = {"TableName": "jobs", "Key": {"jobId": {"S": "j"}}}
    usage.observe(_environ("dynamodb", target="DynamoDB_20120810.GetItem", body=json.dumps(get).encode()),
                  lambda *a: None, _answer(b"{" + b" " * 5000 + b"}"))  # fmt: skip
    strong = {**get, "ConsistentRead": True}
    usage.observe(_environ("dynamodb", target="DynamoDB_20120810.GetItem", body=json.dumps(strong).encode()),
                  lambda *a: None, _answer(b"{}"))  # fmt: skip
    units = usage.snapshot()["dynamodb"]
    assert units["jobs"] == {"write": 2.0, "read": 0.5 * 2 + 1.0}  # 1.5 KB: 2 WRU; 5 KB eventually: 2 x 0.5
    assert units["events"] == {"write": 2.0, "read": 0.0}  # transactional: 2 WRU per KB


def test_the_endpoint_serves_its_counts_and_forwards_none_of_lambda():
    app = LocalAwsApp(_answer(b"{}"), lambda_url="http://127.0.0.1:9", dynamodb_url=None)
    list(app(_environ("sqs", target="AmazonSQS.SendMessage", body=b"{}"), lambda *a: None))
    captured: list[str] = []
    body = b"".join(app(_environ("none", method="GET", path=PATH), lambda status, headers: captured.append(status)))
    assert captured == ["200 OK"]
    assert json.loads(body)["calls"] == {"sqs SendMessage": 1}
