"""WebSocket connections and subscriptions, and pushing messages to them.

One table holds both, keyed ``pk``/``sk``:

* ``conn#<connectionId>`` / ``conn``: the connection, its user and the subscriptions it holds;
* ``sub#job#<jobId>`` or ``sub#project#<projectId>`` / ``<connectionId>``: one subscription.

Every item carries ``expiresAt`` (DynamoDB TTL): API Gateway closes a connection after two hours
at most, so a ``$disconnect`` that never arrives leaves nothing behind for long.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from core import aws
from core.clock import epoch_seconds, now_iso
from core.config import settings

logger = Logger(child=True)

CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60 + 300


def _table() -> Any:
    return aws.table(settings().connections_table)


def subscription_key(kind: str, target_id: str) -> str:
    return f"sub#{kind}#{target_id}"


def save_connection(connection_id: str, user_id: str) -> None:
    _table().put_item(
        Item={
            "pk": f"conn#{connection_id}",
            "sk": "conn",
            "userId": user_id,
            "connectedAt": now_iso(),
            "expiresAt": epoch_seconds() + CONNECTION_LIFETIME_SECONDS,
        }
    )


def connection(connection_id: str) -> dict[str, Any] | None:
    return _table().get_item(Key={"pk": f"conn#{connection_id}", "sk": "conn"}).get("Item")


def subscribe(connection_id: str, user_id: str, kind: str, target_id: str) -> None:
    key = subscription_key(kind, target_id)
    table = _table()
    table.put_item(
        Item={
            "pk": key,
            "sk": connection_id,
            "userId": user_id,
            "expiresAt": epoch_seconds() + CONNECTION_LIFETIME_SECONDS,
        }
    )
    table.update_item(
        Key={"pk": f"conn#{connection_id}", "sk": "conn"},
        UpdateExpression="ADD subs :k",
        ExpressionAttributeValues={":k": {key}},
    )


def unsubscribe(connection_id: str, kind: str, target_id: str) -> None:
    key = subscription_key(kind, target_id)
    table = _table()
    table.delete_item(Key={"pk": key, "sk": connection_id})
    table.update_item(
        Key={"pk": f"conn#{connection_id}", "sk": "conn"},
        UpdateExpression="DELETE subs :k",
        ExpressionAttributeValues={":k": {key}},
    )


def forget(connection_id: str) -> None:
    """Delete a connection and every subscription it held."""
    item = connection(connection_id)
    keys = [{"pk": f"conn#{connection_id}", "sk": "conn"}]
    keys += [{"pk": sub, "sk": connection_id} for sub in (item or {}).get("subs", set())]
    with _table().batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)


def subscribers(user_id: str, keys: list[str]) -> list[str]:
    """Connection ids of ``user_id`` subscribed to any of ``keys``, each once."""
    found: dict[str, None] = {}
    for key in keys:
        page: dict[str, Any] = {"Items": [], "LastEvaluatedKey": None}
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": key},
        }
        while True:
            page = _table().query(**kwargs)
            for item in page.get("Items", []):
                # Subscriptions are checked at subscribe time; this is the second lock on the door.
                if item.get("userId") == user_id:
                    found[item["sk"]] = None
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return list(found)


def send(connection_id: str, message: dict[str, Any]) -> bool:
    """Push one message; a connection that is gone is forgotten. Never raises: a push must not fail a workflow."""
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        aws.connections_client(settings().connections_url).post_to_connection(ConnectionId=connection_id, Data=data)
        return True
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("GoneException", "410"):
            logger.info("connection gone, forgetting it", extra={"connectionId": connection_id})
            try:
                forget(connection_id)
            except ClientError:
                logger.exception("could not forget a gone connection")
        else:
            logger.warning("push failed", extra={"connectionId": connection_id, "code": code})
        return False
    except Exception:  # network trouble: the event is stored, the client can catch up
        logger.exception("push failed", extra={"connectionId": connection_id})
        return False
