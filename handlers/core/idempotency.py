"""Idempotency keys (``POST /jobs``, ``Start Job`` events): the same key and body give the same job.

The same key with another body is ``409``.

A conditional write decides the race: the first request with a key records it ``IN_PROGRESS``
with a hash of its body, starts the job, then records ``COMPLETED`` with the job id. A concurrent
request with the same key finds the record and waits for it to complete, then answers with the
same job. Keys belong to a user (``<userId>#<key>``) and expire after a day (DynamoDB TTL).

Powertools' Idempotency utility answers a concurrent duplicate with an error instead of the
result, which the contract does not allow; hence this small variant of the same pattern.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core import aws
from core.clock import epoch_seconds
from core.config import settings
from core.errors import Conflict, ServiceUnavailable, ValidationError

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
TTL_SECONDS = 24 * 60 * 60
WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Claim:
    record_id: str
    body_hash: str
    job_id: str | None  # set when another request already made the job


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _table() -> Any:
    return aws.table(settings().idempotency_table)


def claim(user_id: str, key: str, body: Any, job_id: str, key_path: str = "headers.Idempotency-Key") -> Claim:
    """Claim ``key`` for a new job ``job_id``, or find the job that already holds it.

    ``key_path`` names where the key came from in a ValidationError (a header of ``POST /jobs``,
    ``detail.idempotencyKey`` of a ``Start Job`` event).
    """
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValidationError(
            "the idempotency key must be 1 to 128 visible ASCII characters",
            [{"path": key_path, "message": "1 to 128 visible ASCII characters"}],
        )
    record_id = f"{user_id}#{key}"
    digest = body_hash(body)
    try:
        _table().put_item(
            Item={
                "id": record_id,
                "bodyHash": digest,
                "state": "IN_PROGRESS",
                "jobId": job_id,
                "expiresAt": epoch_seconds() + TTL_SECONDS,
            },
            ConditionExpression="attribute_not_exists(id)",
        )
        return Claim(record_id, digest, None)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        record = _table().get_item(Key={"id": record_id}, ConsistentRead=True).get("Item")
        if record is None:  # the other request failed and let go of the key: take it now
            return claim(user_id, key, body, job_id, key_path)
        if record["bodyHash"] != digest:
            raise Conflict("this Idempotency-Key was used with another request body")
        if record["state"] == "COMPLETED":
            return Claim(record_id, digest, record["jobId"])
        if time.monotonic() > deadline:
            raise ServiceUnavailable("a request with this Idempotency-Key is still in progress; try again")
        time.sleep(0.05)


def complete(claimed: Claim) -> None:
    _table().update_item(
        Key={"id": claimed.record_id},
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":done": "COMPLETED"},
    )


def release(claimed: Claim) -> None:
    _table().delete_item(Key={"id": claimed.record_id})
